package scenarios

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// Parse reads a scenario from YAML text. name labels error messages (usually the file
// path) and gives the default scenario name; relative paths in the text stay as written.
// Errors are an Errors value: one FieldError per problem, each with file, line and field.
func Parse(name string, data []byte) (*Scenario, error) {
	root, err := parseDocument(name, data)
	if err != nil {
		return nil, err
	}
	el := &errorList{file: name, lines: map[string]int{}}
	d := &decoder{errorList: el}
	// Validation runs even when decoding failed, so one pass reports everything; not
	// when the document is no mapping at all, where every field would be "missing".
	s, isMapping := d.scenario(root)
	if isMapping {
		s.validate(el)
	}
	if err := el.err(); err != nil {
		return nil, err
	}
	s.Source = name
	s.text = append([]byte(nil), data...)
	s.lines = el.lines
	return s, nil
}

// Load reads a scenario file. Relative paths in it (password_file, ca_file, lab.hotfix_dir,
// provider.dir, provider.appliance_kernel, image, kernel, initrd) are taken relative to the
// file's folder.
func Load(file string) (*Scenario, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", file, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", file, err)
	}
	s, err := Parse(file, data)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(file)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	s.Lab.HotfixDir = rel(s.Lab.HotfixDir)
	s.Provider.VagrantDir = rel(s.Provider.VagrantDir)
	// A CLI given as a path is the scenario's; a bare name is looked up on PATH.
	if strings.ContainsRune(s.Provider.VagrantCLI, filepath.Separator) {
		s.Provider.VagrantCLI = rel(s.Provider.VagrantCLI)
	}
	s.Provider.ApplianceKernel = rel(s.Provider.ApplianceKernel)
	for i := range s.Targets {
		t := &s.Targets[i]
		t.PasswordFile, t.CAFile = rel(t.PasswordFile), rel(t.CAFile)
		t.Image, t.Kernel, t.Initrd = rel(t.Image), rel(t.Kernel), rel(t.Initrd)
	}
	return s, nil
}

// BuiltinNames lists the scenarios compiled into wfplab, sorted.
func BuiltinNames() []string {
	entries, _ := fs.ReadDir(builtinFS, "builtin")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Builtin returns a built-in scenario by name; its Source is "builtin:<name>".
func Builtin(name string) (*Scenario, error) {
	names := BuiltinNames()
	file := path.Join("builtin", name+".yaml")
	data, err := builtinFS.ReadFile(file)
	if err != nil || strings.ContainsAny(name, `/\`) {
		return nil, fmt.Errorf("no built-in scenario %q%s; built-in are: %s", name, didYouMean(name, names), strings.Join(names, ", "))
	}
	s, err := Parse(file, data)
	if err != nil {
		return nil, err
	}
	s.Source = "builtin:" + name
	return s, nil
}

// Open takes what a user gives --scenario: a file path, or the name of a built-in
// scenario when no such file exists ("" means the default built-in).
func Open(fileOrName string) (*Scenario, error) {
	if fileOrName == "" {
		return Builtin(DefaultScenario)
	}
	if name, ok := strings.CutPrefix(fileOrName, "builtin:"); ok {
		return Builtin(name)
	}
	_, statErr := os.Stat(fileOrName)
	looksLikeFile := strings.ContainsAny(fileOrName, `/\`) || filepath.Ext(fileOrName) != ""
	if statErr == nil || looksLikeFile {
		return Load(fileOrName)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		names := BuiltinNames()
		for _, n := range names {
			if n == fileOrName {
				return Builtin(n)
			}
		}
		return nil, fmt.Errorf("no scenario file %q and no built-in scenario of that name%s; built-in are: %s",
			fileOrName, didYouMean(fileOrName, names), strings.Join(names, ", "))
	}
	return Load(fileOrName)
}

// Text returns the scenario's source text as read (nil for one built in code).
func (s *Scenario) Text() []byte {
	return append([]byte(nil), s.text...)
}
