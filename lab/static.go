package lab

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/hashicorp/go-multierror"
	"github.com/wfplab/wfplab/lab/contract"
)

// StaticTarget describes a guest that is already running: the caller gives everything.
// The password comes from an environment variable or a file, never from the command line
// (argv is visible to every user of the host).
type StaticTarget struct {
	Name     string
	OS       string // catalog name, e.g. "win7-x64"
	Endpoint contract.Endpoint
	User     string
	// Exactly one of these names where the password is.
	PasswordEnv  string // environment variable
	PasswordFile string // file whose first line is the password; must not be readable by group or others
	Traffic      contract.TrafficAddrs
}

// Static is a Provider for guests someone else runs: Up resolves credentials and checks the
// definitions; Down leaves the guests alone.
type Static struct {
	targets []StaticTarget
	getenv  func(string) string
}

// NewStatic makes a Static provider for the given targets.
func NewStatic(targets ...StaticTarget) *Static {
	return &Static{targets: append([]StaticTarget(nil), targets...), getenv: os.Getenv}
}

// Name is "static".
func (s *Static) Name() string { return "static" }

// Up returns the targets whose definitions are complete, and a go-multierror with one
// entry per target that is not.
func (s *Static) Up(ctx context.Context) ([]contract.Target, error) {
	var errs *multierror.Error
	var out []contract.Target
	seen := map[string]bool{}
	for i, st := range s.targets {
		if err := ctx.Err(); err != nil {
			return out, multierror.Append(errs, fmt.Errorf("static provider: %w", err)).ErrorOrNil()
		}
		label := st.Name
		if label == "" {
			label = fmt.Sprintf("static target #%d", i+1)
		}
		if st.Name != "" && seen[st.Name] {
			errs = multierror.Append(errs, fmt.Errorf("%s: the name is used by another target; names must be unique", label))
			continue
		}
		seen[st.Name] = true
		t, err := s.resolve(st)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", label, err))
			continue
		}
		out = append(out, t)
	}
	return out, errs.ErrorOrNil()
}

// Down does nothing: static guests belong to whoever runs them.
func (s *Static) Down(context.Context) error { return nil }

func (s *Static) resolve(st StaticTarget) (contract.Target, error) {
	var problems []string
	if st.Name == "" {
		problems = append(problems, "no name")
	}
	osEntry, err := contract.LookupOS(st.OS)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if st.Endpoint.Host == "" {
		problems = append(problems, "no endpoint host")
	}
	if st.Endpoint.Port < 1 || st.Endpoint.Port > 65535 {
		problems = append(problems, fmt.Sprintf("endpoint port %d is not in 1..65535", st.Endpoint.Port))
	}
	if st.User == "" {
		problems = append(problems, "no user")
	}
	tr := st.Traffic
	if !tr.Stream.IsValid() || !tr.Control.IsValid() || !tr.Forward.IsValid() || !tr.ForwardPrefix.IsValid() {
		problems = append(problems, "traffic addresses incomplete (stream, control, forward and forward prefix are all needed)")
	}
	password, perr := s.password(st)
	if perr != nil {
		problems = append(problems, perr.Error())
	}
	if len(problems) > 0 {
		return contract.Target{}, fmt.Errorf("%s; fix the static target definition", strings.Join(problems, "; "))
	}
	return contract.Target{
		Name:     st.Name,
		OS:       osEntry,
		Endpoint: st.Endpoint,
		Creds:    contract.Credentials{User: st.User, Password: password},
		Traffic:  tr,
	}, nil
}

// password reads the password from where the target says.
func (s *Static) password(st StaticTarget) (string, error) {
	return ReadPassword(st.PasswordEnv, st.PasswordFile, s.getenv)
}

// ReadPassword reads a guest's password from an environment variable or a file (whose
// first line is the password, and which no one else may read): exactly one of env and
// file is given. Errors name the place, never the value.
func ReadPassword(env, file string, getenv func(string) string) (string, error) {
	switch {
	case env != "" && file != "":
		return "", fmt.Errorf("both a password variable (%s) and a password file (%s) are given; keep one", env, file)
	case env != "":
		p := getenv(env)
		if p == "" {
			return "", fmt.Errorf("environment variable %s (the password) is empty or not set; export it before running", env)
		}
		return p, nil
	case file != "":
		fi, err := os.Stat(file)
		if err != nil {
			return "", fmt.Errorf("password file: %v", err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("password file %s can be read by other users (mode %v); chmod 600 it", file, fi.Mode().Perm())
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("password file: %v", err)
		}
		first, _, _ := strings.Cut(string(b), "\n")
		p := strings.TrimSuffix(first, "\r")
		if p == "" {
			return "", fmt.Errorf("password file %s is empty; put the password on its first line", file)
		}
		return p, nil
	}
	return "", fmt.Errorf("no password source: set password_env (an environment variable) or password_file")
}
