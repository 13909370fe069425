package contract

// TagTable carries unchanged tag values forward across the samples of one stream: S1
// lines carry only the tags that changed, so the full table is the sum of what came
// before. A sample with seq 0 starts a new stream (a new agent process, whose first line
// carries every tag in use) and clears the table. The zero value is ready to use; it is
// not safe for concurrent use. The store and the tests rebuild tables with this one rule.
type TagTable struct {
	tags    map[string]TagUsage
	lastSeq uint64
	started bool
	gaps    uint64
}

// Apply folds the changed tags of the sample numbered seq into the table.
func (t *TagTable) Apply(seq uint64, changed map[string]TagUsage) {
	if seq == 0 || t.tags == nil {
		t.tags = make(map[string]TagUsage, len(changed))
	} else if t.started && seq != t.lastSeq+1 {
		// A lost line means some tags may hold stale values until they change again.
		t.gaps++
	}
	for tag, u := range changed {
		t.tags[tag] = u
	}
	t.lastSeq, t.started = seq, true
}

// Tags is the table in force: the caller reads it and must neither keep nor change it.
func (t *TagTable) Tags() map[string]TagUsage { return t.tags }

// Gaps counts samples whose seq did not follow the previous one (lines lost or unparsed).
func (t *TagTable) Gaps() uint64 { return t.gaps }
