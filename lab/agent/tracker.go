package agent

// Tracker carries unchanged tag values forward across the samples of one stream: S1 lines
// carry only the tags that changed, so the full table is the sum of what came before.
// The zero value is ready to use. It is not safe for concurrent use.
type Tracker struct {
	tags    map[string]TagUsage
	lastSeq uint64
	started bool
	gaps    uint64
}

// Apply folds s into the table and returns the full tag table after s (a copy the caller
// owns). A sample with seq 0 starts a new stream (a new agent process) and clears the table.
func (t *Tracker) Apply(s Sample) map[string]TagUsage {
	if s.Seq == 0 || t.tags == nil {
		t.tags = make(map[string]TagUsage, len(s.ChangedTags))
	} else if t.started && s.Seq != t.lastSeq+1 {
		// A lost line means some tags may hold stale values until they change again.
		t.gaps++
	}
	for tag, u := range s.ChangedTags {
		t.tags[tag] = u
	}
	t.lastSeq, t.started = s.Seq, true
	out := make(map[string]TagUsage, len(t.tags))
	for tag, u := range t.tags {
		out[tag] = u
	}
	return out
}

// Gaps counts samples whose seq did not follow the previous one (lines lost or unparsed).
func (t *Tracker) Gaps() uint64 { return t.gaps }
