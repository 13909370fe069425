package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// StoreFile is the run store's file name inside a run folder.
const StoreFile = "wfplab.db"

// SchemaVersion is the store layout this package writes (PRAGMA user_version).
// 2 added the forward path's frame counts to traffic; 3 the throughput windows
// (tputSchema); 4 a result's bytes-per-chain fit (results.dose); 5 samples.multi_blocked.
// Open upgrades older stores.
const SchemaVersion = 5

const (
	// commitEvery bounds how long a write waits before its transaction commits, so a
	// run killed at any moment loses at most this much of what it measured.
	commitEvery = 100 * time.Millisecond
	// maxBatch bounds one transaction.
	maxBatch = 4096
	// queueLen is how many writes may wait for the writer.
	queueLen = 8192
	// enqueueTimeout bounds how long a Record call waits for room in the queue.
	enqueueTimeout = 30 * time.Second
	// flushTimeout bounds Flush and the final drain in Close.
	flushTimeout = 60 * time.Second
	// busyTimeoutMS is SQLite's busy_timeout: how long a connection waits for a lock.
	busyTimeoutMS = 10000
	// commitRetries is how often a batch is retried when its transaction fails.
	commitRetries = 3
)

const schema = `
CREATE TABLE run (
	id            TEXT PRIMARY KEY,
	scenario      TEXT NOT NULL,
	scenario_text TEXT NOT NULL,
	provider      TEXT NOT NULL,
	seed          INTEGER NOT NULL,
	tool          TEXT NOT NULL,
	started_ns    INTEGER NOT NULL,
	finished_ns   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE targets (
	name    TEXT PRIMARY KEY,
	os      TEXT NOT NULL,
	product TEXT NOT NULL,
	arch    TEXT NOT NULL,
	ord     INTEGER NOT NULL
);
CREATE TABLE phases (
	target     TEXT NOT NULL,
	phase      TEXT NOT NULL,
	os_build   TEXT NOT NULL,
	netio      TEXT NOT NULL,
	hotfix     TEXT NOT NULL,
	started_ns INTEGER NOT NULL,
	ended_ns   INTEGER NOT NULL,
	ord        INTEGER NOT NULL,
	PRIMARY KEY (target, phase)
);
CREATE TABLE windows (
	target   TEXT NOT NULL,
	phase    TEXT NOT NULL,
	profile  TEXT NOT NULL,
	start_ns INTEGER NOT NULL,
	end_ns   INTEGER NOT NULL,
	ord      INTEGER NOT NULL,
	PRIMARY KEY (target, phase, profile)
);
CREATE TABLE samples (
	id            INTEGER PRIMARY KEY,
	target        TEXT NOT NULL,
	phase         TEXT NOT NULL,
	at_ns         INTEGER NOT NULL,
	seq           INTEGER NOT NULL,
	guest_us      INTEGER NOT NULL,
	np_bytes      INTEGER NOT NULL,
	np_allocs     INTEGER NOT NULL,
	np_frees      INTEGER NOT NULL,
	cpu_kernel_ms INTEGER NOT NULL,
	cpu_user_ms   INTEGER NOT NULL,
	cpu_idle_ms   INTEGER NOT NULL,
	drv_state     TEXT NOT NULL,
	classify      INTEGER NOT NULL,
	blocked       INTEGER NOT NULL,
	nbls          INTEGER NOT NULL,
	multi_chain   INTEGER NOT NULL,
	multi_blocked INTEGER
);
CREATE INDEX samples_by_target ON samples (target, id);
CREATE TABLE layer_counters (
	sample_id   INTEGER NOT NULL,
	layer       TEXT NOT NULL,
	classify    INTEGER NOT NULL,
	blocked     INTEGER NOT NULL,
	nbls        INTEGER NOT NULL,
	multi_chain INTEGER NOT NULL,
	h1          INTEGER NOT NULL,
	h2          INTEGER NOT NULL,
	h3_4        INTEGER NOT NULL,
	h5_8        INTEGER NOT NULL,
	h9_16       INTEGER NOT NULL,
	h17         INTEGER NOT NULL,
	PRIMARY KEY (sample_id, layer)
) WITHOUT ROWID;
CREATE TABLE tag_changes (
	sample_id INTEGER NOT NULL,
	tag       TEXT NOT NULL,
	allocs    INTEGER NOT NULL,
	frees     INTEGER NOT NULL,
	bytes     INTEGER NOT NULL,
	PRIMARY KEY (sample_id, tag)
) WITHOUT ROWID;
CREATE TABLE events (
	id      INTEGER PRIMARY KEY,
	target  TEXT NOT NULL,
	phase   TEXT NOT NULL,
	at_ns   INTEGER NOT NULL,
	kind    TEXT NOT NULL,
	message TEXT NOT NULL
);
CREATE INDEX events_by_target ON events (target, id);
CREATE TABLE traffic (
	id      INTEGER PRIMARY KEY,
	target  TEXT NOT NULL,
	phase   TEXT NOT NULL,
	profile TEXT NOT NULL,
	at_ns   INTEGER NOT NULL,
	packets INTEGER NOT NULL,
	bytes   INTEGER NOT NULL,
	bursts  INTEGER NOT NULL,
	conns   INTEGER NOT NULL,
	resets  INTEGER NOT NULL,
	errors  INTEGER NOT NULL,
	errors_by_kind TEXT NOT NULL,
	span_ns  INTEGER NOT NULL,
	syscalls INTEGER NOT NULL,
	frames        INTEGER NOT NULL DEFAULT 0,
	fwd_frames    INTEGER NOT NULL DEFAULT 0,
	fwd_datagrams INTEGER NOT NULL DEFAULT 0,
	fwd_bytes     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX traffic_by_target ON traffic (target, id);
CREATE TABLE results (
	target          TEXT NOT NULL,
	phase           TEXT NOT NULL,
	profile         TEXT NOT NULL,
	slope           REAL,
	lo              REAL,
	hi              REAL,
	n               INTEGER NOT NULL,
	n_eff           REAL,
	chains_per_sec  REAL,
	packets_per_sec REAL,
	bytes_per_chain REAL,
	top_tags        TEXT NOT NULL,
	verdict         TEXT NOT NULL,
	expected        TEXT NOT NULL,
	met             INTEGER NOT NULL,
	note            TEXT NOT NULL,
	ord             INTEGER NOT NULL,
	dose            TEXT,
	PRIMARY KEY (target, phase, profile)
);
`

// Store is a run's SQLite store. Writes from any number of goroutines go through one
// writer goroutine that commits at least every commitEvery; reads use their own
// connections and see everything committed, also from another process while a run is live.
type Store struct {
	path string
	wdb  *sql.DB // one connection, used only by the writer goroutine
	rdb  *sql.DB // readers

	mu       sync.RWMutex // guards closed and sends on ops
	closed   bool
	readOnly bool // OpenReadOnly: no writer, no wdb
	version  int  // schema version; below SchemaVersion only when read-only (not upgraded)
	ops      chan writeOp
	done     chan struct{}

	errMu    sync.Mutex
	writeErr error // first write that failed

	keptMu sync.Mutex
	kept   map[string]*keptSamples // by target, once KeepPool has read them
}

// writeOp is one write, or (apply == nil) a flush request.
type writeOp struct {
	apply func(w *batch) error
	flush chan error
}

// Create makes dir (if needed) and a new store in it, and records the run.
// It fails if the folder already holds a store.
func Create(dir string, info RunInfo) (*Store, error) {
	if info.ID == "" {
		return nil, errors.New("bench: create store: RunInfo.ID is empty; give the run an id")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: create run folder %s: %w", dir, err)
	}
	path := filepath.Join(dir, StoreFile)
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("bench: create store: %s already exists; choose a new run folder", path)
	}
	s, err := openStore(path, "rwc")
	if err != nil {
		return nil, err
	}
	if err := s.initSchema(info); err != nil {
		s.closeDBs()
		return nil, err
	}
	s.startWriter()
	return s, nil
}

// Open opens an existing store for reading (and for writing results again, as a report
// rebuilt later does). path is the database file or the run folder holding it.
func Open(path string) (*Store, error) {
	path, err := storeFile(path)
	if err != nil {
		return nil, err
	}
	s, err := openStore(path, "rw")
	if err != nil {
		return nil, err
	}
	version, err := s.schemaVersion()
	if err == nil && version < SchemaVersion {
		err = s.upgrade(version)
	}
	if err != nil {
		s.closeDBs()
		return nil, err
	}
	s.version = SchemaVersion
	s.startWriter()
	return s, nil
}

// ErrOldSchema is a store that must be upgraded (written) before this wfplab reads it.
var ErrOldSchema = errors.New("the store was written by an older wfplab and needs an upgrade, which writes to it")

// OpenReadOnly opens an existing store for reading only: SQLite opens it read-only and
// query-only, so nothing, not even a WAL checkpoint, changes the files a report is made
// from. A killed run's WAL is read as it is. Writes fail at once. A store of schema 1 is
// ErrOldSchema: Open upgrades it.
func OpenReadOnly(path string) (*Store, error) {
	path, err := storeFile(path)
	if err != nil {
		return nil, err
	}
	s, err := openStore(path, "ro")
	if err != nil {
		return nil, err
	}
	version, err := s.schemaVersion()
	if err == nil && version == 1 {
		err = fmt.Errorf("bench: open store %s read-only: %w", path, ErrOldSchema)
	}
	if err != nil {
		s.closeDBs()
		return nil, err
	}
	s.readOnly, s.version = true, version
	return s, nil
}

// storeFile is the database file of path, a file or a run folder.
func storeFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("bench: open store: %w", err)
	}
	if !fi.IsDir() {
		return path, nil
	}
	path = filepath.Join(path, StoreFile)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("bench: open store: %w (is this a run folder?)", err)
	}
	return path, nil
}

// schemaVersion reads the store's schema version and refuses what this wfplab cannot read.
func (s *Store) schemaVersion() (int, error) {
	var version int
	if err := s.rdb.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("bench: open store %s: read schema version: %w", s.path, err)
	}
	switch {
	case version == 0:
		return 0, fmt.Errorf("bench: open store %s: not a wfplab run store (schema version 0)", s.path)
	case version > SchemaVersion:
		return 0, fmt.Errorf("bench: open store %s: schema version %d is newer than this wfplab reads (%d); use a newer wfplab",
			s.path, version, SchemaVersion)
	}
	return version, nil
}

// upgrade brings a store of an older version to SchemaVersion, one version at a time.
func (s *Store) upgrade(version int) error {
	steps := []func() error{s.upgradeFrom1, s.upgradeFrom2, s.upgradeFrom3, s.upgradeFrom4}
	for v := max(version, 1); v < SchemaVersion; v++ {
		if err := steps[v-1](); err != nil {
			return err
		}
	}
	return nil
}

// upgradeFrom3 adds version 4's results.dose (NULL for results already there: they were
// judged as a rate).
func (s *Store) upgradeFrom3() error {
	return s.migrate(4, `ALTER TABLE results ADD COLUMN dose TEXT;`)
}

// upgradeFrom4 adds version 5's samples.multi_blocked (NULL for samples already there:
// their driver's count is unknown, not zero).
func (s *Store) upgradeFrom4() error {
	return s.migrate(5, `ALTER TABLE samples ADD COLUMN multi_blocked INTEGER;`)
}

// migrate runs one upgrade's statements and sets the version, in one transaction.
func (s *Store) migrate(to int, stmts string) error {
	tx, err := s.wdb.Begin()
	if err != nil {
		return fmt.Errorf("bench: open store %s: upgrade to schema %d: %w", s.path, to, err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(stmts + fmt.Sprintf(`PRAGMA user_version = %d;`, to)); err != nil {
		return fmt.Errorf("bench: open store %s: upgrade to schema %d: %w; is the folder writable?", s.path, to, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("bench: open store %s: upgrade to schema %d: %w", s.path, to, err)
	}
	return nil
}

// upgradeFrom1 adds version 2's traffic columns (zero for the seconds already there: a
// version 1 run had no frame links).
func (s *Store) upgradeFrom1() error {
	tx, err := s.wdb.Begin()
	if err != nil {
		return fmt.Errorf("bench: open store %s: upgrade to schema 2: %w", s.path, err)
	}
	defer tx.Rollback()
	for _, col := range []string{"frames", "fwd_frames", "fwd_datagrams", "fwd_bytes"} {
		if _, err := tx.Exec(`ALTER TABLE traffic ADD COLUMN ` + col + ` INTEGER NOT NULL DEFAULT 0`); err != nil {
			return fmt.Errorf("bench: open store %s: upgrade to schema 2: adding traffic.%s: %w; is the folder writable?", s.path, col, err)
		}
	}
	if _, err := tx.Exec(`PRAGMA user_version = 2`); err != nil {
		return fmt.Errorf("bench: open store %s: upgrade to schema 2: %w", s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("bench: open store %s: upgrade to schema 2: %w", s.path, err)
	}
	return nil
}

func dsn(path, mode string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("bench: store path %s: %w", path, err)
	}
	q := url.Values{}
	q.Set("mode", mode)
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	if mode == "ro" {
		// Setting the journal mode would write; a WAL store stays WAL.
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String(), nil
}

func openStore(path, mode string) (*Store, error) {
	d, err := dsn(path, mode)
	if err != nil {
		return nil, err
	}
	if mode == "ro" { // readers only
		rdb, err := sql.Open("sqlite", d)
		if err != nil {
			return nil, fmt.Errorf("bench: open store %s: %w", path, err)
		}
		rdb.SetMaxOpenConns(4)
		if err := rdb.Ping(); err != nil {
			rdb.Close()
			return nil, fmt.Errorf("bench: open store %s read-only: %w", path, err)
		}
		return &Store{path: path, rdb: rdb}, nil
	}
	wdb, err := sql.Open("sqlite", d)
	if err != nil {
		return nil, fmt.Errorf("bench: open store %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	if err := wdb.Ping(); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("bench: open store %s: %w", path, err)
	}
	rdb, err := sql.Open("sqlite", d)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("bench: open store %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(4)
	return &Store{path: path, wdb: wdb, rdb: rdb}, nil
}

func (s *Store) initSchema(info RunInfo) error {
	tx, err := s.wdb.Begin()
	if err != nil {
		return fmt.Errorf("bench: create store %s: %w", s.path, err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(schema + tputSchema); err != nil {
		return fmt.Errorf("bench: create store %s: schema: %w", s.path, err)
	}
	if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, SchemaVersion)); err != nil {
		return fmt.Errorf("bench: create store %s: schema version: %w", s.path, err)
	}
	if _, err := tx.Exec(`INSERT INTO run (id, scenario, scenario_text, provider, seed, tool, started_ns, finished_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		info.ID, info.Scenario, info.ScenarioText, info.Provider, info.Seed, info.Tool,
		timeNS(info.Started), timeNS(info.Finished)); err != nil {
		return fmt.Errorf("bench: create store %s: record run: %w", s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("bench: create store %s: %w", s.path, err)
	}
	return nil
}

func (s *Store) startWriter() {
	s.ops = make(chan writeOp, queueLen)
	s.done = make(chan struct{})
	go s.writeLoop()
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// enqueue hands one write to the writer goroutine.
func (s *Store) enqueue(what string, apply func(w *batch) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("bench: %s: store %s is closed", what, s.path)
	}
	if s.readOnly {
		return fmt.Errorf("bench: %s: store %s is open read-only", what, s.path)
	}
	t := time.NewTimer(enqueueTimeout)
	defer t.Stop()
	op := writeOp{apply: func(w *batch) error {
		if err := apply(w); err != nil {
			return fmt.Errorf("bench: %s: %w", what, err)
		}
		return nil
	}}
	select {
	case s.ops <- op:
		return nil
	case <-t.C:
		return fmt.Errorf("bench: %s: store writer stalled for %s (disk full or locked by another process?)", what, enqueueTimeout)
	}
}

// Flush waits until every write made before it is committed, and returns the first
// write that failed so far, if any.
func (s *Store) Flush() error {
	if err := s.waitCommitted(); err != nil {
		return err
	}
	return s.Err()
}

// waitCommitted waits until every write queued before it is committed. It fails only
// when the writer stalls; failed writes are left to Err.
func (s *Store) waitCommitted() error {
	s.mu.RLock()
	if s.closed || s.readOnly {
		s.mu.RUnlock()
		return nil
	}
	reply := make(chan error, 1)
	t := time.NewTimer(flushTimeout)
	defer t.Stop()
	select {
	case s.ops <- writeOp{flush: reply}:
	case <-t.C:
		s.mu.RUnlock()
		return fmt.Errorf("bench: flush store %s: writer stalled for %s", s.path, flushTimeout)
	}
	s.mu.RUnlock()
	select {
	case <-reply:
		return nil
	case <-t.C:
		return fmt.Errorf("bench: flush store %s: no commit within %s", s.path, flushTimeout)
	}
}

// Err is the first write that failed, or nil.
func (s *Store) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.writeErr
}

func (s *Store) noteErr(err error) {
	if err == nil {
		return
	}
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.writeErr == nil {
		s.writeErr = err
	}
}

// Close commits what is queued and closes the store. It returns the first write that failed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return s.Err()
	}
	s.closed = true
	if s.readOnly {
		s.mu.Unlock()
		return s.closeDBs()
	}
	close(s.ops)
	s.mu.Unlock()
	t := time.NewTimer(flushTimeout)
	defer t.Stop()
	var stalled error
	select {
	case <-s.done:
	case <-t.C:
		stalled = fmt.Errorf("bench: close store %s: writer did not finish within %s; recent writes may be lost", s.path, flushTimeout)
	}
	closeErr := s.closeDBs()
	switch {
	case stalled != nil:
		return stalled
	case s.Err() != nil:
		return s.Err()
	}
	return closeErr
}

func (s *Store) closeDBs() error {
	if s.wdb == nil {
		return s.rdb.Close()
	}
	return errors.Join(s.rdb.Close(), s.wdb.Close())
}

// writeLoop gathers writes for up to commitEvery (or maxBatch writes, or until a flush)
// and commits them in one transaction.
func (s *Store) writeLoop() {
	defer close(s.done)
	for {
		first, ok := <-s.ops
		if !ok {
			return
		}
		ops := []writeOp{first}
		open := true
		if first.apply != nil {
			timer := time.NewTimer(commitEvery)
		gather:
			for len(ops) < maxBatch {
				select {
				case op, more := <-s.ops:
					if !more {
						open = false
						break gather
					}
					ops = append(ops, op)
					if op.apply == nil {
						break gather
					}
				case <-timer.C:
					break gather
				}
			}
			timer.Stop()
		}
		s.commit(ops)
		if !open {
			return
		}
	}
}

// commit applies ops in one transaction, retrying the whole batch when the transaction
// itself fails, and answers the flush requests among them.
func (s *Store) commit(ops []writeOp) {
	var txErr error
	for attempt := 0; attempt < commitRetries; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		var opErrs []error
		opErrs, txErr = s.tryCommit(ops)
		if txErr == nil {
			for _, err := range opErrs {
				s.noteErr(err)
			}
			break
		}
	}
	if txErr != nil {
		s.noteErr(fmt.Errorf("bench: store %s: commit of %d writes failed: %w", s.path, len(ops), txErr))
	}
	for _, op := range ops {
		if op.flush != nil {
			op.flush <- s.Err()
		}
	}
}

func (s *Store) tryCommit(ops []writeOp) (opErrs []error, txErr error) {
	ctx := context.Background()
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	b := &batch{tx: tx, stmts: map[string]*sql.Stmt{}}
	for _, op := range ops {
		if op.apply == nil {
			continue
		}
		// A failed statement leaves the transaction usable in SQLite; the other writes go on.
		if err := op.apply(b); err != nil {
			opErrs = append(opErrs, err)
		}
	}
	b.closeStmts()
	if err := tx.Commit(); err != nil {
		tx.Rollback()
		return nil, err
	}
	return opErrs, nil
}

// batch is one write transaction with its prepared statements.
type batch struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (b *batch) exec(query string, args ...any) (sql.Result, error) {
	st, ok := b.stmts[query]
	if !ok {
		var err error
		st, err = b.tx.Prepare(query)
		if err != nil {
			return nil, err
		}
		b.stmts[query] = st
	}
	return st.Exec(args...)
}

func (b *batch) closeStmts() {
	for _, st := range b.stmts {
		st.Close()
	}
}

// timeNS stores a time as Unix nanoseconds; the zero time is 0.
func timeNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// nsTime reads timeNS back, in UTC.
func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// u64 stores a counter losslessly in SQLite's signed 64-bit integer.
func u64(v uint64) int64 { return int64(v) }
