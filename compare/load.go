package compare

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/perf/benchfmt"

	"github.com/wfplab/wfplab/bench"
	"github.com/wfplab/wfplab/plots"
)

// Side is one side of a comparison: every value read, by benchmark name and unit.
type Side struct {
	Path    string   // as given
	Sources []string // the files read: bench.txt files or stores
	values  map[key][]float64
	units   benchfmt.UnitMetadataMap
	order   []key // first appearance, for a stable table
	skipped int   // values that were not finite
}

type key struct{ name, unit string }

// Runs is how many files (one per run) the side pooled.
func (s *Side) Runs() int { return len(s.Sources) }

// Load reads one side: a bench.txt file, a store (wfplab.db), a run folder (its bench.txt,
// else its store), or a folder of run folders, whose runs are pooled as repeated samples.
func Load(path string) (*Side, error) {
	s := &Side{Path: path, values: map[key][]float64{}, units: benchfmt.UnitMetadataMap{}}
	files, err := sources(path)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := s.read(f); err != nil {
			return nil, err
		}
	}
	if len(s.order) == 0 {
		return nil, fmt.Errorf("%s: no benchmark results in %s: a run that measured nothing, or not a wfplab bench.txt", path, strings.Join(s.Sources, ", "))
	}
	return s, nil
}

// sources lists the files path stands for.
func sources(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: give a run folder (results/<run-id>), its bench.txt or wfplab.db, or a folder of run folders", path, err)
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	if f, ok := runFile(path); ok {
		return []string{f}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if f, ok := runFile(filepath.Join(path, e.Name())); ok {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: neither a run folder (no %s or %s) nor a folder of run folders: give results/<run-id> or a folder holding several", path, plots.BenchFile, bench.StoreFile)
	}
	sort.Strings(files)
	return files, nil
}

// runFile is the file a run folder is read from: bench.txt, which the run wrote, else the
// store, for a run killed before it wrote bench.txt.
func runFile(dir string) (string, bool) {
	for _, name := range []string{plots.BenchFile, bench.StoreFile} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, true
		}
	}
	return "", false
}

var sqliteMagic = []byte("SQLite format 3\x00")

func (s *Side) read(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if bytes.HasPrefix(data, sqliteMagic) {
		if data, err = storeBench(file); err != nil {
			return err
		}
	}
	s.Sources = append(s.Sources, file)
	r := benchfmt.NewReader(bytes.NewReader(data), file)
	for r.Scan() {
		switch rec := r.Result().(type) {
		case *benchfmt.SyntaxError:
			return fmt.Errorf("%v: not Go benchmark format; fix or remove the line", rec)
		case *benchfmt.Result:
			name := strings.TrimPrefix(rec.Name.String(), "Benchmark")
			for _, v := range rec.Values {
				if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
					s.skipped++
					continue
				}
				k := key{name, v.Unit}
				if _, ok := s.values[k]; !ok {
					s.order = append(s.order, k)
				}
				s.values[k] = append(s.values[k], v.Value)
			}
		}
	}
	if err := r.Err(); err != nil {
		return err
	}
	for k, m := range r.Units() {
		s.units[k] = m
	}
	return nil
}

// storeBench is the bench text plots writes for the run in a store.
func storeBench(file string) ([]byte, error) {
	st, err := bench.OpenReadOnly(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	data, rerr := plots.BenchText(st)
	cerr := st.Close()
	if err := errors.Join(rerr, cerr); err != nil {
		return nil, fmt.Errorf("%s: reading the run: %w", file, err)
	}
	return data, nil
}
