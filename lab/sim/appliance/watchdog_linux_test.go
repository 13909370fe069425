//go:build linux

package appliance

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWatchdogReportsOnceWhenWinRMStopsAnswering(t *testing.T) {
	var stalled atomic.Bool
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stalled.Load() {
			<-release // holds the request unanswered, as a stalled guest does
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	defer close(release)

	reports := make(chan string, 2)
	go watchWinRM(srv.URL+"/wsman", 10*time.Millisecond, 50*time.Millisecond, 3, func(why string) { reports <- why })
	select {
	case why := <-reports:
		t.Fatalf("reported while WinRM answered: %s", why)
	case <-time.After(300 * time.Millisecond):
	}
	stalled.Store(true)
	select {
	case why := <-reports:
		if !strings.Contains(why, srv.URL) || !strings.Contains(why, "3 times in a row") {
			t.Errorf("report %q: want the URL and the 3 misses", why)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no report 10 s after WinRM stopped answering")
	}
	select {
	case why := <-reports:
		t.Errorf("a second report: %s", why)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestWriteKmsgOneErrorRecordPerLine(t *testing.T) {
	var b strings.Builder
	writeKmsg(&b, "first\n\tsecond\n"+strings.Repeat("x", 2000)+"\n")
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "<3>wfplab: first" || lines[1] != "<3>wfplab: \tsecond" {
		t.Fatalf("records %q", lines)
	}
	if len(lines[2]) > 1000 || !strings.HasSuffix(lines[2], "...") {
		t.Errorf("a 2,000-byte line became a %d-byte record %q...: want it cut under the kernel's record size", len(lines[2]), lines[2][:40])
	}
}
