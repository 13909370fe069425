package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse holds Parse to its promises on any input: no panic; an error is a list of
// FieldErrors naming the file; a scenario that parses expands to every cell and renders
// to YAML that parses back to the same scenario.
func FuzzParse(f *testing.F) {
	for _, name := range BuiltinNames() {
		data, err := builtinFS.ReadFile("builtin/" + name + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	if data, err := os.ReadFile(filepath.Join("examples", "static-lab.yaml")); err == nil {
		f.Add(data)
	}
	for _, c := range badCases {
		f.Add([]byte(c.yaml))
	}
	for _, seed := range []string{
		"targets: [win7-x64]\n",
		"a: &a [*a]\n",
		"targets: &t [win7-x64]\nexpect: [{target: *t, verdict: LEAK}]\n",
		"targets:\n  - !!binary aGVsbG8=\n",
		"timing: {window: 9223372036854775807ns}\ntargets: [win7-x64]\n",
		"profiles: [{kind: stream-burst, rate: 1e400}]\ntargets: [win7-x64]\n",
		"{{{{{{{{{{{{{{{{{{{{",
		"\xff\xfe\x00",
		"targets: [win7-x64]\n...\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			var list Errors
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty Errors: %T %v", err, err)
			}
			for _, e := range list {
				if e.File != "fuzz.yaml" || e.Line < 0 || e.Msg == "" {
					t.Fatalf("malformed FieldError %+v", e)
				}
			}
			return
		}
		if n := len(s.Cells()); n != len(s.Targets)*len(s.Phases)*len(s.Profiles) || n == 0 {
			t.Fatalf("%d cells for %d×%d×%d", n, len(s.Targets), len(s.Phases), len(s.Profiles))
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed scenario does not validate: %v", err)
		}
		out, err := s.YAML()
		if err != nil {
			t.Fatalf("YAML: %v", err)
		}
		back, err := Parse("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("canonical YAML does not parse: %v\n%s", err, out)
		}
		if a, b := canonical(s), canonical(back); !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip differs\n got %+v\nwant %+v\n%s", b, a, out)
		}
	})
}
