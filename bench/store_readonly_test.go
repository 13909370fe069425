package bench

import (
	"bytes"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/traffic"
)

// A report reads a store without changing a byte of it: a killed run's store (its WAL not
// checkpointed) is read as it is, nothing is checkpointed on close, and writes fail at once.
func TestOpenReadOnlyChangesNothing(t *testing.T) {
	s, dir := newStore(t)
	must(t, s.RecordTarget(TargetInfo{Name: "t1", OS: "win7-x64"}))
	for i := uint64(0); i < 50; i++ {
		must(t, s.RecordSample("t1", "before", t0.Add(time.Duration(i)*time.Millisecond), testSample(i, 5000+i, nil)))
	}
	must(t, s.Flush())
	// The files as a kill -9 leaves them: the database, its WAL and its shared memory.
	killed := filepath.Join(t.TempDir(), "killed")
	must(t, os.MkdirAll(killed, 0o755))
	for _, suffix := range []string{"", "-wal", "-shm"} {
		data, err := os.ReadFile(filepath.Join(dir, StoreFile+suffix))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(killed, StoreFile+suffix), data, 0o644))
	}
	type snap struct {
		data []byte
		mod  time.Time
	}
	files := func() map[string]snap {
		m := map[string]snap{}
		for _, suffix := range []string{"", "-wal"} {
			p := filepath.Join(killed, StoreFile+suffix)
			data, err := os.ReadFile(p)
			must(t, err)
			fi, err := os.Stat(p)
			must(t, err)
			m[suffix] = snap{data, fi.ModTime()}
		}
		return m
	}
	before := files()
	if len(before["-wal"].data) == 0 {
		t.Fatal("the copied store has an empty WAL: the test would not show a checkpoint")
	}
	time.Sleep(20 * time.Millisecond) // a write would show in the modification time

	ro, err := OpenReadOnly(killed)
	must(t, err)
	pool, err := ro.Pool("t1")
	must(t, err)
	if len(pool) != 50 {
		t.Errorf("read %d samples from the WAL, want 50", len(pool))
	}
	if err := ro.RecordTarget(TargetInfo{Name: "t2"}); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a write to a read-only store: %v", err)
	}
	must(t, ro.Flush())
	must(t, ro.Close())
	after := files()
	for suffix, b := range before {
		a := after[suffix]
		if !bytes.Equal(a.data, b.data) || !a.mod.Equal(b.mod) {
			t.Errorf("%s%s changed: %d bytes at %s, was %d at %s", StoreFile, suffix, len(a.data), a.mod, len(b.data), b.mod)
		}
	}
	if _, err := os.Stat(filepath.Join(killed, StoreFile+"-wal")); err != nil {
		t.Errorf("closing removed the WAL: %v", err)
	}
}

func TestOpenReadOnlyRefusesWhatItCannotRead(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenReadOnly(dir); err == nil {
		t.Error("a folder without a store opened")
	}
	empty := filepath.Join(dir, StoreFile)
	must(t, os.WriteFile(empty, nil, 0o644))
	if _, err := OpenReadOnly(empty); err == nil || !strings.Contains(err.Error(), "not a wfplab run store") {
		t.Errorf("an empty file: %v", err)
	}
	s, sdir := newStore(t)
	must(t, s.Close())
	rw, err := Open(sdir)
	must(t, err)
	_, err = rw.wdb.Exec(`PRAGMA user_version = 1`)
	must(t, err)
	must(t, rw.Close())
	if _, err := OpenReadOnly(sdir); !errors.Is(err, ErrOldSchema) {
		t.Errorf("a schema 1 store: %v, want ErrOldSchema", err)
	}
}

// A stream-burst second whose bursts the guest reset stores its resets apart: they are the
// blocked traffic doing its job, not send errors in the report's traffic table.
func TestStoreCountsResetsApartFromSendErrors(t *testing.T) {
	s, _ := newStore(t)
	must(t, s.RecordTraffic("a", "before", "stream-burst", traffic.Tick{At: t0, Span: time.Second,
		Delta: traffic.Counters{Packets: 80, Bursts: 7, Conns: 4, Resets: 3, Errors: map[string]uint64{"ECONNRESET": 2, "EPIPE": 1, "ENOBUFS": 1}}}))
	must(t, s.Flush())
	tr, err := s.Traffic("a")
	must(t, err)
	if len(tr) != 1 || tr[0].Errors != 1 {
		t.Fatalf("stored %+v, want 1 send error (the 3 resets apart)", tr)
	}
}

// A schema 4 store read without upgrading: its samples have no multi_blocked, read as
// unknown, not as zero.
func TestOpenReadOnlySchema4Samples(t *testing.T) {
	s, dir := newStore(t)
	must(t, s.RecordSample("a", "before", t0, contract.Sample{Seq: 1, Driver: contract.Driver{State: "running",
		Layers: map[contract.Layer]contract.LayerCounters{contract.LayerStream: {MultiChain: 4, MultiBlocked: 4, HasMultiBlocked: true}}}}))
	must(t, s.Close())
	db, err := sql.Open("sqlite", filepath.Join(dir, StoreFile))
	must(t, err)
	_, err = db.Exec(`ALTER TABLE samples DROP COLUMN multi_blocked; PRAGMA user_version = 4;`)
	must(t, err)
	must(t, db.Close())
	ro, err := OpenReadOnly(dir)
	must(t, err)
	defer ro.Close()
	pool, err := ro.Pool("a")
	must(t, err)
	if len(pool) != 1 || pool[0].MultiChain != 4 || pool[0].HasMultiBlocked {
		t.Fatalf("samples of a schema 4 store: %+v", pool)
	}
}
