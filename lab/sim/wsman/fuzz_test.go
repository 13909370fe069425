package wsman

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"
)

// seedRequests are real client requests (built by masterzen/winrm) plus hand-made odd ones.
func seedRequests() []string {
	p := winrm.NewParameters("PT1S", "en-US", 153600)
	const url = "http://127.0.0.1:5985/wsman"
	const id = "67A74734-DD32-4F10-89DE-49A060483810"
	return []string{
		winrm.NewOpenShellRequest(url, p).String(),
		winrm.NewExecuteCommandRequest(url, id, "echo", []string{"a&b", "<c>"}, p).String(),
		winrm.NewGetOutputRequest(url, id, id, "stdout stderr", p).String(),
		winrm.NewSendInputRequest(url, id, id, []byte("input"), true, p).String(),
		winrm.NewSignalRequest(url, id, id, p).String(),
		winrm.NewDeleteShellRequest(url, id, p).String(),
		envelope(ActionCreate, "", "", `<sh:Shell><sh:InputStreams/><sh:OutputStreams>stdout</sh:OutputStreams></sh:Shell>`),
		`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"/>`,
		`<s:Envelope xmlns:s="` + NSSoap + `"><s:Header/><s:Body/></s:Envelope><!-- x -->`,
		"<a><b></a>",
		"",
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range seedRequests() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := parseRequest(data)
		if err != nil {
			if req != nil {
				t.Fatal("error with a request")
			}
			return
		}
		// Accessors on any parsed request are safe.
		_, _ = req.Header.selector("ShellId")
		_, _ = req.Header.option("WINRS_CODEPAGE")
		_, _ = parseDuration(req.Header.OperationTimeout)
	})
}

// FuzzServeHTTP posts arbitrary bodies to a live server: it must never panic, and every
// SOAP answer must be well-formed XML.
func FuzzServeHTTP(f *testing.F) {
	for _, s := range seedRequests() {
		f.Add([]byte(s))
	}
	host := HostFunc(func(ctx context.Context, cmd Command) int {
		_, _ = io.WriteString(cmd.Stdout, cmd.Line)
		return 0
	})
	srv := &Server{Host: host, User: testUser, Password: testPassword, MaxOperationTimeout: 10 * time.Millisecond}
	f.Cleanup(func() { _ = srv.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		req := httptest.NewRequest(http.MethodPost, "/wsman", bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
		req.SetBasicAuth(testUser, testPassword)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusInternalServerError, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("HTTP %d for a well-authenticated POST", rec.Code)
		}
		dec := xml.NewDecoder(rec.Body)
		for {
			_, err := dec.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("answer is not well-formed: %v", err)
			}
		}
	})
}

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"PT60S":        60 * time.Second,
		"PT60.000S":    60 * time.Second,
		"PT1.5S":       1500 * time.Millisecond,
		"PT1M":         time.Minute,
		"PT2H":         2 * time.Hour,
		"P1D":          24 * time.Hour,
		"P0DT0H1M30S":  90 * time.Second,
		" PT0S ":       0,
		"PT7200.000S":  2 * time.Hour,
		"P1DT1H1M1.5S": 25*time.Hour + time.Minute + 1500*time.Millisecond,
	}
	for in, want := range good {
		got, err := parseDuration(in)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "60", "P", "PT", "-PT1S", "P1Y", "P1M", "PT1X", "PTS", "PT1S2", "P1H", "PT1.2.3S", "PT99999999999999999999S", "P1DTT1S"} {
		if d, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", in, d)
		}
	}
}

func TestReceiveBudgetFitsEnvelope(t *testing.T) {
	for _, limit := range []int{minEnvelopeSize, 20000, 153600, DefaultMaxEnvelopeSize} {
		budget := receiveBudget(limit)
		// Worst case: the whole budget in one stream, both End markers, the Done state.
		res := receiveResult{chunks: []chunk{{stream: "stdout", data: bytes.Repeat([]byte{0xff}, budget), end: true}, {stream: "stderr", end: true}}, done: true, exitCode: -2147483648}
		body := encodeReceiveResponse("uuid:"+newGUID(), "uuid:"+newGUID(), res)
		if len(body) > limit {
			t.Errorf("MaxEnvelopeSize %d: a full answer is %d bytes", limit, len(body))
		}
	}
}

func TestSplitSharesBudget(t *testing.T) {
	cases := []struct{ out, err, budget, wantOut, wantErr int }{
		{10, 10, 100, 10, 10},
		{1000, 0, 100, 100, 0},
		{0, 1000, 100, 0, 100},
		{1000, 1000, 100, 50, 50},
		{1000, 20, 100, 80, 20},
		{20, 1000, 100, 20, 80},
	}
	for _, c := range cases {
		o, e := split(c.out, c.err, c.budget)
		if o != c.wantOut || e != c.wantErr || o+e > c.budget {
			t.Errorf("split(%d, %d, %d) = %d, %d; want %d, %d", c.out, c.err, c.budget, o, e, c.wantOut, c.wantErr)
		}
	}
}

func TestNewGUIDFormat(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		g := newGUID()
		if len(g) != 36 || strings.ToUpper(g) != g || g[14] != '4' || strings.Count(g, "-") != 4 || seen[g] {
			t.Fatalf("bad or repeated GUID %q", g)
		}
		seen[g] = true
	}
}

func TestParseRequestFields(t *testing.T) {
	p := winrm.NewParameters("PT1M30S", "en-US", 204800)
	const url = "http://127.0.0.1:5985/wsman"
	req, err := parseRequest([]byte(winrm.NewExecuteCommandRequest(url, "SHELL-1", "echo", []string{"a&b", "<c>"}, p).String()))
	if err != nil {
		t.Fatal(err)
	}
	h := req.Header
	if h.Action != ActionCommand || !strings.HasPrefix(h.MessageID, "uuid:") || h.ResourceURI != ResourceURICmd ||
		h.MaxEnvelopeSize != "204800" || h.OperationTimeout != "PT1M30S" {
		t.Errorf("header %+v", h)
	}
	if id, ok := h.selector("shellid"); !ok || id != "SHELL-1" {
		t.Errorf("ShellId selector %q %v", id, ok)
	}
	if v, ok := h.option("WINRS_SKIP_CMD_SHELL"); !ok || v != "FALSE" {
		t.Errorf("option %q %v", v, ok)
	}
	cl := req.Body.CommandLine
	if cl == nil || cl.Command == nil || *cl.Command != "echo" || len(cl.Arguments) != 2 || cl.Arguments[0] != "a&b" || cl.Arguments[1] != "<c>" {
		t.Errorf("command line %+v", cl)
	}

	req, err = parseRequest([]byte(winrm.NewSendInputRequest(url, "S", "C", []byte("hello"), true, p).String()))
	if err != nil {
		t.Fatal(err)
	}
	if s := req.Body.Send; s == nil || len(s.Streams) != 1 || s.Streams[0].Name != "stdin" || s.Streams[0].CommandID != "C" ||
		s.Streams[0].End != "true" || s.Streams[0].Data != "aGVsbG8=" {
		t.Errorf("send %+v", req.Body.Send)
	}
	req, err = parseRequest([]byte(winrm.NewSignalRequest(url, "S", "C", p).String()))
	if err != nil || req.Body.Signal == nil || req.Body.Signal.CommandID != "C" || req.Body.Signal.Code != SignalTerminate {
		t.Errorf("signal %+v %v", req.Body.Signal, err)
	}
	req, err = parseRequest([]byte(winrm.NewGetOutputRequest(url, "S", "C", "stdout stderr", p).String()))
	if err != nil || req.Body.Receive == nil || len(req.Body.Receive.Desired) != 1 ||
		req.Body.Receive.Desired[0].CommandID != "C" || req.Body.Receive.Desired[0].Streams != "stdout stderr" {
		t.Errorf("receive %+v %v", req.Body.Receive, err)
	}
	req, err = parseRequest([]byte(winrm.NewOpenShellRequest(url, p).String()))
	if err != nil || req.Body.Shell == nil || req.Body.Shell.InputStreams == nil || *req.Body.Shell.InputStreams != "stdin" ||
		req.Body.Shell.OutputStreams == nil || *req.Body.Shell.OutputStreams != "stdout stderr" {
		t.Errorf("shell %+v %v", req.Body.Shell, err)
	}
	// Elements in foreign namespaces are not what their local name says.
	foreign := `<s:Envelope xmlns:s="` + NSSoap + `"><s:Header><Action xmlns="urn:x">` + ActionCreate +
		`</Action></s:Header><s:Body/></s:Envelope>`
	if req, err := parseRequest([]byte(foreign)); err != nil || req.Header.Action != "" {
		t.Errorf("foreign Action read as %q (%v)", req.Header.Action, err)
	}
}
