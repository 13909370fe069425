package wsman

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/masterzen/winrm"
)

const (
	testUser     = "vagrant"
	testPassword = "Pa55-w0rd-NOT-IN-LOGS"
	// wait bounds every wait in the tests; generous so a loaded machine does not flake.
	wait = 20 * time.Second
)

// testHost understands a handful of command lines, enough to exercise the protocol.
type testHost struct {
	started   chan string // line of each "block" command once it runs
	cancelled chan string // line of each command that saw its ctx cancelled
	written   atomic.Int64
	writeErr  atomic.Value // error a "flood" command got from Write
}

func newTestHost() *testHost {
	return &testHost{started: make(chan string, 64), cancelled: make(chan string, 64)}
}

// pattern is the deterministic content of "big N".
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('A' + (i*7+i/1000)%26)
	}
	return b
}

func (h *testHost) Run(ctx context.Context, cmd Command) int {
	f := strings.Fields(cmd.Line)
	if len(f) == 0 {
		return 0
	}
	arg := func(i int) int {
		if len(f) <= i {
			return 0
		}
		n, _ := strconv.Atoi(f[i])
		return n
	}
	switch strings.ToLower(f[0]) {
	case "echo":
		fmt.Fprintf(cmd.Stdout, "%s\r\n", strings.Join(f[1:], " "))
		return 0
	case "exit":
		return arg(1)
	case "both":
		fmt.Fprint(cmd.Stdout, "to stdout\r\n")
		fmt.Fprint(cmd.Stderr, "to stderr\r\n")
		return 3
	case "big":
		data := pattern(arg(1))
		for len(data) > 0 {
			n := min(len(data), 32*1024)
			if _, err := cmd.Stdout.Write(data[:n]); err != nil {
				return 1
			}
			data = data[n:]
		}
		return 0
	case "cat":
		if _, err := io.Copy(cmd.Stdout, cmd.Stdin); err != nil {
			return 1
		}
		return 0
	case "stream": // a line every N ms until cancelled
		tick := time.NewTicker(time.Duration(max(arg(1), 1)) * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				h.cancelled <- cmd.Line
				return 0
			case <-tick.C:
				fmt.Fprintf(cmd.Stdout, "line %d\r\n", i)
			}
		}
	case "quiet": // silent for N ms, then one line
		select {
		case <-ctx.Done():
			h.cancelled <- cmd.Line
			return 1
		case <-time.After(time.Duration(arg(1)) * time.Millisecond):
			fmt.Fprint(cmd.Stdout, "done\r\n")
			return 0
		}
	case "block":
		h.started <- cmd.Line
		<-ctx.Done()
		h.cancelled <- cmd.Line
		return 0
	case "flood": // 8 KiB writes until Write fails
		chunk := bytes.Repeat([]byte("x"), 8192)
		for {
			n, err := cmd.Stdout.Write(chunk)
			h.written.Add(int64(n))
			if err != nil {
				h.writeErr.Store(err)
				return 0
			}
		}
	case "panic":
		panic("test host panic")
	}
	fmt.Fprintf(cmd.Stderr, "'%s' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", f[0])
	return 1
}

// exchangeRecord is what the recorder saw of one request.
type exchangeRecord struct {
	action string
	status int
	size   int
	body   string
}

// recorder wraps a handler and keeps every exchange, to assert on what went over the wire.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	log  []exchangeRecord
}

type capture struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (c *capture) WriteHeader(code int) { c.status = code; c.ResponseWriter.WriteHeader(code) }
func (c *capture) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.buf.Write(p)
	return c.ResponseWriter.Write(p)
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	action := ""
	if req, err := parseRequest(body); err == nil {
		action = req.Header.Action
	}
	c := &capture{ResponseWriter: w}
	rec.next.ServeHTTP(c, r)
	rec.mu.Lock()
	rec.log = append(rec.log, exchangeRecord{action: action, status: c.status, size: c.buf.Len(), body: c.buf.String()})
	rec.mu.Unlock()
}

func (rec *recorder) records() []exchangeRecord {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]exchangeRecord(nil), rec.log...)
}

// env is a running server and what tests need to talk to it.
type env struct {
	srv  *Server
	host *testHost
	rec  *recorder
	url  string
	addr string
	port int
}

// newEnv starts srv (a fresh one if nil) behind a recorder on a loopback httptest server.
func newEnv(t *testing.T, srv *Server) *env {
	t.Helper()
	return newEnvWrapped(t, srv, nil)
}

// newEnvWrapped is newEnv with wrap (when not nil) between the recorder and the server.
func newEnvWrapped(t *testing.T, srv *Server, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	h := newTestHost()
	if srv == nil {
		srv = NewServer(h, testUser, testPassword)
	} else {
		srv.Host, srv.User, srv.Password = h, testUser, testPassword
	}
	if srv.Logf == nil {
		srv.Logf = t.Logf
	}
	var next http.Handler = srv
	if wrap != nil {
		next = wrap(srv)
	}
	rec := &recorder{next: next}
	ts := httptest.NewServer(rec)
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		ts.Close()
	})
	host, portStr, _ := net.SplitHostPort(ts.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	return &env{srv: srv, host: h, rec: rec, url: ts.URL + "/wsman", addr: host, port: port}
}

// client returns a masterzen/winrm client built as the lab builds one.
func (e *env) client(t *testing.T, params *winrm.Parameters, password string) *winrm.Client {
	t.Helper()
	if params == nil {
		params = winrm.NewParameters("PT60S", "en-US", 153600)
	}
	ep := winrm.NewEndpoint(e.addr, e.port, false, false, nil, nil, nil, 90*time.Second)
	c, err := winrm.NewClientWithParameters(ep, testUser, password, params)
	if err != nil {
		t.Fatalf("winrm client: %v", err)
	}
	return c
}

// post sends a raw request with Basic auth.
func (e *env) post(t *testing.T, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(testUser, testPassword)
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("POST %s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	return resp, body
}

// messageID extracts the a:MessageID of a request we built.
func messageID(t *testing.T, request string) string {
	t.Helper()
	req, err := parseRequest([]byte(request))
	if err != nil {
		t.Fatalf("parsing our own request: %v", err)
	}
	return req.Header.MessageID
}

// envelope builds a request with our own template; header and body are inserted verbatim.
func envelope(action, shellID, header, body string) string {
	sel := ""
	if shellID != "" {
		sel = `<w:SelectorSet><w:Selector Name="ShellId">` + shellID + `</w:Selector></w:SelectorSet>`
	}
	return `<env:Envelope xmlns:env="` + NSSoap + `" xmlns:wsa="` + NSAddress + `" xmlns:w="` + NSWSMan +
		`" xmlns:sh="` + NSShell + `"><env:Header><wsa:To>http://127.0.0.1/wsman</wsa:To>` +
		`<wsa:Action env:mustUnderstand="true">` + action + `</wsa:Action>` +
		`<wsa:MessageID>uuid:11111111-2222-3333-4444-555555555555</wsa:MessageID>` +
		`<w:ResourceURI env:mustUnderstand="true">` + ResourceURICmd + `</w:ResourceURI>` +
		`<w:OperationTimeout>PT5S</w:OperationTimeout>` + sel + header +
		`</env:Header><env:Body>` + body + `</env:Body></env:Envelope>`
}

// soapFault is a fault as a client reads it, namespace-aware.
type soapFault struct {
	Action    string
	RelatesTo string
	Code      xml.Name // resolved QName of s:Code/s:Value
	Subcode   xml.Name // resolved QName of s:Subcode/s:Value
	Reason    string
	Detail    string // w:FaultDetail
	WSManCode string
	Machine   string
	Message   string
}

// parseFault walks the answer with encoding/xml, resolving QName values against the
// namespace declarations in scope, as a namespace-aware client must.
func parseFault(t *testing.T, body []byte) soapFault {
	t.Helper()
	var f soapFault
	dec := xml.NewDecoder(bytes.NewReader(body))
	type frame struct {
		name xml.Name
		ns   map[string]string
	}
	var stack []frame
	resolve := func(v string) xml.Name {
		prefix, local, ok := strings.Cut(strings.TrimSpace(v), ":")
		if !ok {
			return xml.Name{Local: prefix}
		}
		for i := len(stack) - 1; i >= 0; i-- {
			if uri, ok := stack[i].ns[prefix]; ok {
				return xml.Name{Space: uri, Local: local}
			}
		}
		t.Fatalf("QName %q uses an undeclared prefix", v)
		return xml.Name{}
	}
	path := func() string {
		var parts []string
		for _, fr := range stack {
			parts = append(parts, fr.name.Local)
		}
		return strings.Join(parts, "/")
	}
	sawFault := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("fault is not well-formed XML: %v\n%s", err, body)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			ns := map[string]string{}
			for _, a := range tk.Attr {
				if a.Name.Space == "xmlns" {
					ns[a.Name.Local] = a.Value
				}
			}
			stack = append(stack, frame{name: tk.Name, ns: ns})
			if tk.Name.Space == NSSoap && tk.Name.Local == "Fault" {
				sawFault = true
			}
			if tk.Name.Space == NSFault && tk.Name.Local == "WSManFault" {
				for _, a := range tk.Attr {
					switch a.Name.Local {
					case "Code":
						f.WSManCode = a.Value
					case "Machine":
						f.Machine = a.Value
					}
				}
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				continue
			}
			text := string(tk)
			top := stack[len(stack)-1].name
			switch p := path(); {
			case p == "Envelope/Header/Action" && top.Space == NSAddress:
				f.Action += text
			case p == "Envelope/Header/RelatesTo" && top.Space == NSAddress:
				f.RelatesTo += text
			case p == "Envelope/Body/Fault/Code/Value" && top.Space == NSSoap:
				f.Code = resolve(text)
			case p == "Envelope/Body/Fault/Code/Subcode/Value" && top.Space == NSSoap:
				f.Subcode = resolve(text)
			case p == "Envelope/Body/Fault/Reason/Text" && top.Space == NSSoap:
				f.Reason += text
			case p == "Envelope/Body/Fault/Detail/FaultDetail" && top.Space == NSWSMan:
				f.Detail += text
			case strings.HasPrefix(p, "Envelope/Body/Fault/Detail/WSManFault/Message"):
				f.Message += text
			}
		}
	}
	if !sawFault {
		t.Fatalf("answer has no {%s}Fault:\n%s", NSSoap, body)
	}
	return f
}

// findText returns the text of every element {space}local whose attribute attr equals value
// (attr "" matches all), the way pywinrm's ElementTree .find(".//{ns}Selector[@Name='ShellId']") does.
func findText(t *testing.T, body []byte, space, local, attr, value string) []string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(body))
	var out []string
	var cur *strings.Builder
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("answer is not well-formed XML: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			if cur != nil {
				depth++
				continue
			}
			if tk.Name.Space != space || tk.Name.Local != local {
				continue
			}
			match := attr == ""
			for _, a := range tk.Attr {
				if a.Name.Local == attr && a.Value == value {
					match = true
				}
			}
			if match {
				cur = &strings.Builder{}
				depth = 0
			}
		case xml.CharData:
			if cur != nil {
				cur.Write(tk)
			}
		case xml.EndElement:
			if cur == nil {
				continue
			}
			if depth > 0 {
				depth--
				continue
			}
			out = append(out, cur.String())
			cur = nil
		}
	}
}

// waitFor receives from ch or fails after the test deadline.
func waitFor(t *testing.T, ch <-chan string, what string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		return ""
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
