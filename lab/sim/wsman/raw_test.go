package wsman

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"
)

// Tests in this file speak raw HTTP and read the answers with encoding/xml, checking codes and
// namespaces the way a strict client would.

var rawParams = winrm.NewParameters("PT5S", "en-US", 153600)

func (e *env) createShell(t *testing.T) string {
	t.Helper()
	resp, body := e.post(t, winrm.NewOpenShellRequest(e.url, rawParams).String())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create: HTTP %d\n%s", resp.StatusCode, body)
	}
	id, err := winrm.ParseOpenShellResponse(string(body))
	if err != nil || id == "" {
		t.Fatalf("create: no shell id (%v)\n%s", err, body)
	}
	return id
}

func (e *env) startCommand(t *testing.T, shellID, line string) string {
	t.Helper()
	resp, body := e.post(t, winrm.NewExecuteCommandRequest(e.url, shellID, line, nil, rawParams).String())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("command: HTTP %d\n%s", resp.StatusCode, body)
	}
	id, err := winrm.ParseExecuteCommandResponse(string(body))
	if err != nil {
		t.Fatalf("command: %v", err)
	}
	return id
}

// expectFault checks status, media type, well-formedness and the fault codes of an answer.
func expectFault(t *testing.T, resp *http.Response, body []byte, status int, code, subcode xmlName) soapFault {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("HTTP %d, want %d\n%s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/soap+xml;charset=UTF-8" {
		t.Errorf("fault Content-Type %q", ct)
	}
	f := parseFault(t, body)
	if f.Code.Space != code.space || f.Code.Local != code.local {
		t.Errorf("fault code %v, want {%s}%s", f.Code, code.space, code.local)
	}
	if f.Subcode.Space != subcode.space || f.Subcode.Local != subcode.local {
		t.Errorf("fault subcode %v, want {%s}%s", f.Subcode, subcode.space, subcode.local)
	}
	return f
}

type xmlName struct{ space, local string }

var (
	sender   = xmlName{NSSoap, "Sender"}
	receiver = xmlName{NSSoap, "Receiver"}
)

func TestAuthFailures(t *testing.T) {
	e := newEnv(t, nil)
	request := winrm.NewOpenShellRequest(e.url, rawParams).String()
	cases := map[string]func(r *http.Request){
		"no credentials": func(r *http.Request) {},
		"wrong password": func(r *http.Request) { r.SetBasicAuth(testUser, "nope") },
		"wrong user":     func(r *http.Request) { r.SetBasicAuth("administrator", testPassword) },
		"password case":  func(r *http.Request) { r.SetBasicAuth(testUser, strings.ToLower(testPassword)) },
		// SPNEGO (Kerberos) is not simulated; NTLM under Negotiate is (ntlm_test.go).
		"spnego":     func(r *http.Request) { r.Header.Set("Authorization", "Negotiate YIIBAA==") },
		"bad base64": func(r *http.Request) { r.Header.Set("Authorization", "Basic !!!") },
	}
	for name, set := range cases {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(request))
			req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
			set(req)
			resp, body := do(t, req)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("HTTP %d, want 401", resp.StatusCode)
			}
			if got := resp.Header.Get("Server"); got != "Microsoft-HTTPAPI/2.0" {
				t.Errorf("Server %q", got)
			}
			got := resp.Header.Values("WWW-Authenticate")
			if len(got) != 2 || got[0] != "Negotiate" || got[1] != `Basic realm="WSMAN"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
			if len(body) != 0 {
				t.Errorf("401 body %q, want empty", body)
			}
		})
	}
	// The user name is not case-sensitive on Windows.
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(request))
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(strings.ToUpper(testUser), testPassword)
	if resp, body := do(t, req); resp.StatusCode != http.StatusOK {
		t.Fatalf("upper-case user: HTTP %d\n%s", resp.StatusCode, body)
	}
}

func TestHTTPLevelRejections(t *testing.T) {
	e := newEnv(t, nil)
	request := winrm.NewOpenShellRequest(e.url, rawParams).String()
	send := func(method, url, contentType string) *http.Response {
		req, _ := http.NewRequest(method, url, strings.NewReader(request))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.SetBasicAuth(testUser, testPassword)
		resp, _ := do(t, req)
		return resp
	}
	base := strings.TrimSuffix(e.url, "/wsman")
	if r := send(http.MethodPost, base+"/other", "application/soap+xml;charset=UTF-8"); r.StatusCode != http.StatusNotFound {
		t.Errorf("other path: HTTP %d", r.StatusCode)
	}
	r := send(http.MethodGet, e.url, "")
	if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "POST" {
		t.Errorf("GET: HTTP %d Allow %q", r.StatusCode, r.Header.Get("Allow"))
	}
	for _, ct := range []string{"text/xml; charset=utf-8", "application/soap+xml;charset=ISO-8859-1", "", "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\""} {
		if r := send(http.MethodPost, e.url, ct); r.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %q: HTTP %d, want 415", ct, r.StatusCode)
		}
	}
	if r := send(http.MethodPost, e.url, "application/soap+xml"); r.StatusCode != http.StatusOK {
		t.Errorf("application/soap+xml without charset: HTTP %d", r.StatusCode)
	}
}

func TestCreateResponseReadLikePywinrm(t *testing.T) {
	e := newEnv(t, nil)
	request := winrm.NewOpenShellRequest(e.url, rawParams).String()
	resp, body := e.post(t, request)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d\n%s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/soap+xml;charset=UTF-8" {
		t.Errorf("Content-Type %q", ct)
	}
	// pywinrm: root.find('.//{wsman}Selector[@Name="ShellId"]').text
	ids := findText(t, body, NSWSMan, "Selector", "Name", "ShellId")
	if len(ids) != 1 || len(ids[0]) != 36 {
		t.Fatalf("Selector[@Name='ShellId'] = %q", ids)
	}
	if got := findText(t, body, NSShell, "ShellId", "", ""); len(got) != 1 || got[0] != ids[0] {
		t.Errorf("rsp:Shell/rsp:ShellId %q differs from the selector %q", got, ids[0])
	}
	if got, _ := winrm.ParseOpenShellResponse(string(body)); got != ids[0] {
		t.Errorf("masterzen reads shell id %q, want %q", got, ids[0])
	}
	if got := findText(t, body, NSAddress, "RelatesTo", "", ""); len(got) != 1 || got[0] != messageID(t, request) {
		t.Errorf("RelatesTo %q, want the request's MessageID %q", got, messageID(t, request))
	}
	msgIDs := findText(t, body, NSAddress, "MessageID", "", "")
	if len(msgIDs) != 1 || !strings.HasPrefix(msgIDs[0], "uuid:") || msgIDs[0] == messageID(t, request) {
		t.Errorf("answer MessageID %q", msgIDs)
	}
	if got := findText(t, body, NSAddress, "Action", "", ""); len(got) != 1 || got[0] != NSTransfer+"/CreateResponse" {
		t.Errorf("Action %q", got)
	}
	if got := findText(t, body, NSShell, "OutputStreams", "", ""); len(got) != 1 || got[0] != "stdout stderr" {
		t.Errorf("OutputStreams %q", got)
	}
	// Two shells get different ids.
	if other := e.createShell(t); other == ids[0] {
		t.Error("two shells share an id")
	}
}

func TestShellStreamsHonoured(t *testing.T) {
	e := newEnv(t, nil)
	create := envelope(ActionCreate, "",
		`<w:OptionSet><w:Option Name="WINRS_NOPROFILE">TRUE</w:Option><w:Option Name="WINRS_CODEPAGE">437</w:Option></w:OptionSet>`,
		`<sh:Shell><sh:InputStreams></sh:InputStreams><sh:OutputStreams>stdout</sh:OutputStreams></sh:Shell>`)
	resp, body := e.post(t, create)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create: HTTP %d\n%s", resp.StatusCode, body)
	}
	shellID, _ := winrm.ParseOpenShellResponse(string(body))
	cmdID := e.startCommand(t, shellID, "both")
	resp, body = e.post(t, winrm.NewGetOutputRequest(e.url, shellID, cmdID, "stdout stderr", rawParams).String())
	var out, errb bytes.Buffer
	done, code, err := winrm.ParseSlurpOutputErrResponse(string(body), &out, &errb)
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("receive: HTTP %d %v", resp.StatusCode, err)
	}
	if !done || code != 3 || out.String() != "to stdout\r\n" || errb.Len() != 0 {
		t.Errorf("done %v exit %d stdout %q stderr %q (stderr was not requested at Create)", done, code, out.String(), errb.String())
	}
	if n := len(findText(t, body, NSShell, "Stream", "Name", "stderr")); n != 0 {
		t.Errorf("%d stderr streams in the answer of a shell without stderr", n)
	}
	// No input streams: Send is refused.
	cmdID = e.startCommand(t, shellID, "cat")
	resp, body = e.post(t, winrm.NewSendInputRequest(e.url, shellID, cmdID, []byte("x"), true, rawParams).String())
	expectFault(t, resp, body, http.StatusInternalServerError, receiver, xmlName{NSWSMan, "InternalError"})
}

func TestReceiveTimedOutFault(t *testing.T) {
	e := newEnv(t, nil)
	shellID := e.createShell(t)
	cmdID := e.startCommand(t, shellID, "block")
	waitFor(t, e.host.started, "the command to start")
	request := winrm.NewGetOutputRequest(e.url, shellID, cmdID, "stdout stderr", winrm.NewParameters("PT1S", "en-US", 153600)).String()
	resp, body := e.post(t, request)
	f := expectFault(t, resp, body, http.StatusInternalServerError, receiver, xmlName{NSWSMan, "TimedOut"})
	if f.Reason != TimedOutReason {
		t.Errorf("Reason %q", f.Reason)
	}
	if f.WSManCode != "2150858793" {
		t.Errorf("WSManFault Code %q", f.WSManCode)
	}
	if f.RelatesTo != messageID(t, request) {
		t.Errorf("RelatesTo %q, want %q", f.RelatesTo, messageID(t, request))
	}
	if f.Action != "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault" {
		t.Errorf("Action %q", f.Action)
	}
	if f.Machine != "127.0.0.1" {
		t.Errorf("Machine %q", f.Machine)
	}
}

func TestUnknownShellAndCommandFaults(t *testing.T) {
	e := newEnv(t, nil)
	const bogus = "0A0B0C0D-1111-2222-3333-444455556666"
	for name, request := range map[string]string{
		"command": winrm.NewExecuteCommandRequest(e.url, bogus, "echo hi", nil, rawParams).String(),
		"receive": winrm.NewGetOutputRequest(e.url, bogus, bogus, "stdout stderr", rawParams).String(),
		"send":    winrm.NewSendInputRequest(e.url, bogus, bogus, []byte("x"), false, rawParams).String(),
		"signal":  winrm.NewSignalRequest(e.url, bogus, bogus, rawParams).String(),
		"delete":  winrm.NewDeleteShellRequest(e.url, bogus, rawParams).String(),
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.post(t, request)
			f := expectFault(t, resp, body, http.StatusInternalServerError, sender, xmlName{NSWSMan, "InvalidSelectors"})
			if f.WSManCode != "2150858843" || !strings.Contains(f.Message, "ShellId "+bogus+" failed because the shell was not found") {
				t.Errorf("code %q message %q", f.WSManCode, f.Message)
			}
			if f.RelatesTo != messageID(t, request) {
				t.Errorf("RelatesTo %q", f.RelatesTo)
			}
		})
	}
	shellID := e.createShell(t)
	resp, body := e.post(t, winrm.NewGetOutputRequest(e.url, shellID, bogus, "stdout stderr", rawParams).String())
	f := expectFault(t, resp, body, http.StatusInternalServerError, sender, xmlName{NSWSMan, "InvalidSelectors"})
	if f.WSManCode != "2150858843" || !strings.Contains(f.Message, "command identifier that does not exist") {
		t.Errorf("unknown command: code %q message %q", f.WSManCode, f.Message)
	}
	// Shell ids are GUIDs: any case finds the shell.
	cmdID := e.startCommand(t, strings.ToLower(shellID), "echo case")
	if cmdID == "" {
		t.Error("no command id")
	}
	// A shell request without the ShellId selector.
	resp, body = e.post(t, envelope(ActionCommand, "", "", `<sh:CommandLine><sh:Command>echo</sh:Command></sh:CommandLine>`))
	f = expectFault(t, resp, body, http.StatusInternalServerError, sender, xmlName{NSWSMan, "InvalidSelectors"})
	if !strings.Contains(f.Message, "requires the following selector: ShellId") {
		t.Errorf("missing selector message %q", f.Message)
	}
}

func TestUnknownActionFault(t *testing.T) {
	e := newEnv(t, nil)
	resp, body := e.post(t, envelope(NSTransfer+"/Get", "", "", ""))
	f := expectFault(t, resp, body, http.StatusInternalServerError, sender, xmlName{NSAddress, "ActionNotSupported"})
	if f.Action != NSAddress+"/fault" || f.RelatesTo != "uuid:11111111-2222-3333-4444-555555555555" {
		t.Errorf("Action %q RelatesTo %q", f.Action, f.RelatesTo)
	}
	if !strings.HasPrefix(f.Reason, "The action is not supported by the service.") {
		t.Errorf("Reason %q", f.Reason)
	}
}

func TestOversizeEnvelope(t *testing.T) {
	e := newEnv(t, nil)
	big := envelope(ActionCommand, "X", "", `<sh:CommandLine><sh:Command>echo `+strings.Repeat("A", DefaultMaxEnvelopeSize)+`</sh:Command></sh:CommandLine>`)
	resp, body := e.post(t, big)
	f := expectFault(t, resp, body, http.StatusRequestEntityTooLarge, sender, xmlName{NSWSMan, "EncodingLimit"})
	if !strings.Contains(f.Reason, "MaxEnvelopeSize") {
		t.Errorf("Reason %q", f.Reason)
	}
	// Without a Content-Length (chunked), the limit applies while reading.
	req, _ := http.NewRequest(http.MethodPost, e.url, io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(testUser, testPassword)
	resp, body = do(t, req)
	expectFault(t, resp, body, http.StatusRequestEntityTooLarge, sender, xmlName{NSWSMan, "EncodingLimit"})
	// A request just under the limit is read and answered (here: unknown shell).
	small := envelope(ActionCommand, "X", "", `<sh:CommandLine><sh:Command>echo</sh:Command></sh:CommandLine>`)
	resp, body = e.post(t, small+strings.Repeat(" ", DefaultMaxEnvelopeSize-len(small)))
	expectFault(t, resp, body, http.StatusInternalServerError, sender, xmlName{NSWSMan, "InvalidSelectors"})
}

func TestMalformedRequests(t *testing.T) {
	e := newEnv(t, nil)
	headerRequired := xmlName{NSAddress, "MessageInformationHeaderRequired"}
	cases := []struct {
		name    string
		body    string
		code    xmlName
		subcode xmlName
	}{
		{"empty", "", sender, xmlName{}},
		{"not xml", "hello", sender, xmlName{}},
		{"truncated", `<s:Envelope xmlns:s="` + NSSoap + `"><s:Header>`, sender, xmlName{}},
		{"wrong root", `<Envelope/>`, sender, xmlName{}},
		{"undeclared prefix", `<s:Envelope><s:Body/></s:Envelope>`, sender, xmlName{}},
		{"second root", `<s:Envelope xmlns:s="` + NSSoap + `"/><x/>`, sender, xmlName{}},
		{"soap 1.1", `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>`, xmlName{NSSoap, "VersionMismatch"}, xmlName{}},
		{"entity", `<!DOCTYPE x [<!ENTITY e "boom">]><s:Envelope xmlns:s="` + NSSoap + `">&e;</s:Envelope>`, sender, xmlName{}},
		{"no action", strings.Replace(envelope(ActionCreate, "", "", ""), `<wsa:Action env:mustUnderstand="true">`+ActionCreate+`</wsa:Action>`, "", 1), sender, headerRequired},
		{"action in wrong namespace", strings.Replace(envelope(ActionCreate, "", "", ""),
			`<wsa:Action env:mustUnderstand="true">`, `<wsa:Action xmlns:wsa="urn:other" env:mustUnderstand="true">`, 1), sender, headerRequired},
		{"no message id", strings.Replace(envelope(ActionCreate, "", "", ""), "<wsa:MessageID>uuid:11111111-2222-3333-4444-555555555555</wsa:MessageID>", "", 1), sender, headerRequired},
		{"other resource", strings.Replace(envelope(ActionCreate, "", "", ""), ResourceURICmd, "http://schemas.microsoft.com/powershell/Microsoft.PowerShell", 1), sender, xmlName{NSAddress, "DestinationUnreachable"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.post(t, tc.body)
			expectFault(t, resp, body, http.StatusInternalServerError, tc.code, tc.subcode)
		})
	}
	// Shell-level mistakes are the cmd plugin's InternalError faults.
	shellID := e.createShell(t)
	for name, body := range map[string]string{
		"no command line": envelope(ActionCommand, shellID, "", ""),
		"bad signal code": envelope(ActionSignal, shellID, "", `<sh:Signal CommandId="`+e.startCommand(t, shellID, "echo x")+`"><sh:Code>kill</sh:Code></sh:Signal>`),
		"bad base64":      envelope(ActionSend, shellID, "", `<sh:Send><sh:Stream Name="stdin" CommandId="`+e.startCommand(t, shellID, "cat")+`">***</sh:Stream></sh:Send>`),
		"no desired":      envelope(ActionReceive, shellID, "", `<sh:Receive/>`),
	} {
		t.Run(name, func(t *testing.T) {
			resp, b := e.post(t, body)
			f := expectFault(t, resp, b, http.StatusInternalServerError, receiver, xmlName{NSWSMan, "InternalError"})
			if f.WSManCode != "2147942487" {
				t.Errorf("code %q", f.WSManCode)
			}
		})
	}
}

// TestPrefixesAreFree sends requests with other prefixes and a default namespace.
func TestPrefixesAreFree(t *testing.T) {
	e := newEnv(t, nil)
	resp, body := e.post(t, envelope(ActionCreate, "", "", `<sh:Shell><sh:InputStreams>stdin</sh:InputStreams><sh:OutputStreams>stdout stderr</sh:OutputStreams></sh:Shell>`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d\n%s", resp.StatusCode, body)
	}
	shellID, _ := winrm.ParseOpenShellResponse(string(body))
	// Default namespaces everywhere, CDATA and arguments.
	cmd := `<Envelope xmlns="` + NSSoap + `"><Header>` +
		`<Action xmlns="` + NSAddress + `">` + ActionCommand + `</Action>` +
		`<MessageID xmlns="` + NSAddress + `">uuid:AAAAAAAA-0000-0000-0000-000000000001</MessageID>` +
		`<SelectorSet xmlns="` + NSWSMan + `"><Selector Name="ShellId">` + shellID + `</Selector></SelectorSet>` +
		`</Header><Body><CommandLine xmlns="` + NSShell + `"><Command><![CDATA[echo]]></Command>` +
		`<Arguments>a&amp;b</Arguments><Arguments><![CDATA[<c>]]></Arguments></CommandLine></Body></Envelope>`
	resp, body = e.post(t, cmd)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d\n%s", resp.StatusCode, body)
	}
	cmdID, err := winrm.ParseExecuteCommandResponse(string(body))
	if err != nil {
		t.Fatal(err)
	}
	_, body = e.post(t, winrm.NewGetOutputRequest(e.url, shellID, cmdID, "stdout stderr", rawParams).String())
	var out, errb bytes.Buffer
	if _, _, err := winrm.ParseSlurpOutputErrResponse(string(body), &out, &errb); err != nil || out.String() != "a&b <c>\r\n" {
		t.Errorf("command line reached the host as %q (err %v)", out.String(), err)
	}
	// A selector set in a foreign namespace is not a selector set.
	foreign := strings.Replace(envelope(ActionDelete, shellID, "", ""), `<w:SelectorSet>`, `<w:SelectorSet xmlns:w="urn:elsewhere">`, 1)
	resp, body = e.post(t, foreign)
	expectFault(t, resp, body, http.StatusInternalServerError, sender, xmlName{NSWSMan, "InvalidSelectors"})
}

func TestSignalCtrlCAndTerminate(t *testing.T) {
	e := newEnv(t, nil)
	shellID := e.createShell(t)
	cmdID := e.startCommand(t, shellID, "block")
	waitFor(t, e.host.started, "the command to start")
	signal := func(code string) (*http.Response, []byte) {
		return e.post(t, envelope(ActionSignal, shellID, "", `<sh:Signal CommandId="`+cmdID+`"><sh:Code>`+code+`</sh:Code></sh:Signal>`))
	}
	resp, body := signal(SignalCtrlC)
	if resp.StatusCode != http.StatusOK || len(findText(t, body, NSShell, "SignalResponse", "", "")) != 1 {
		t.Fatalf("ctrl_c: HTTP %d\n%s", resp.StatusCode, body)
	}
	waitFor(t, e.host.cancelled, "ctrl_c to cancel the Host ctx")
	_, body = e.post(t, winrm.NewGetOutputRequest(e.url, shellID, cmdID, "stdout stderr", rawParams).String())
	var out, errb bytes.Buffer
	done, code, err := winrm.ParseSlurpOutputErrResponse(string(body), &out, &errb)
	if err != nil || !done || code != ExitCodeInterrupted {
		t.Fatalf("after ctrl_c: done %v exit %d err %v\n%s", done, code, err, body)
	}
	if ends := findText(t, body, NSShell, "Stream", "End", "true"); len(ends) != 2 {
		t.Errorf("%d streams marked End, want 2", len(ends))
	}
	if resp, body := signal(SignalTerminate); resp.StatusCode != http.StatusOK {
		t.Fatalf("terminate: HTTP %d\n%s", resp.StatusCode, body)
	}
	// Terminated commands are gone.
	resp, body = e.post(t, winrm.NewGetOutputRequest(e.url, shellID, cmdID, "stdout stderr", rawParams).String())
	expectFault(t, resp, body, http.StatusInternalServerError, sender, xmlName{NSWSMan, "InvalidSelectors"})
}

// TestBackpressure: a Host writing to a client that does not receive blocks at the buffer
// bound, resumes when the client receives, and Close unblocks it.
func TestBackpressure(t *testing.T) {
	const limit = 64 * 1024
	e := newEnv(t, &Server{MaxOutputBuffer: limit})
	shellID := e.createShell(t)
	cmdID := e.startCommand(t, shellID, "flood")
	eventually(t, "the buffer to fill", func() bool { return e.host.written.Load() == limit })
	time.Sleep(50 * time.Millisecond)
	if n := e.host.written.Load(); n != limit {
		t.Fatalf("host wrote %d bytes with nobody receiving; the bound is %d", n, limit)
	}
	resp, body := e.post(t, winrm.NewGetOutputRequest(e.url, shellID, cmdID, "stdout stderr", rawParams).String())
	var out, errb bytes.Buffer
	if _, _, err := winrm.ParseSlurpOutputErrResponse(string(body), &out, &errb); err != nil || resp.StatusCode != http.StatusOK || out.Len() == 0 {
		t.Fatalf("receive: HTTP %d err %v, %d bytes", resp.StatusCode, err, out.Len())
	}
	eventually(t, "the host to resume writing", func() bool { return e.host.written.Load() > limit })
	if err := e.srv.Close(); err != nil {
		t.Fatalf("Close with a blocked writer: %v", err)
	}
	if err, _ := e.host.writeErr.Load().(error); err == nil {
		t.Error("the blocked Write did not fail when the server closed")
	}
}

func TestReceiveSplitsAcrossResponses(t *testing.T) {
	e := newEnv(t, nil)
	shellID := e.createShell(t)
	const size = 500_000
	cmdID := e.startCommand(t, shellID, "big "+strconv.Itoa(size))
	params := winrm.NewParameters("PT5S", "en-US", 20000) // small envelopes
	var out bytes.Buffer
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("command never finished")
		}
		resp, body := e.post(t, winrm.NewGetOutputRequest(e.url, shellID, cmdID, "stdout stderr", params).String())
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d\n%s", resp.StatusCode, body)
		}
		if len(body) > 20000 {
			t.Fatalf("answer of %d bytes for MaxEnvelopeSize 20000", len(body))
		}
		var errb bytes.Buffer
		done, _, err := winrm.ParseSlurpOutputErrResponse(string(body), &out, &errb)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
	}
	if !bytes.Equal(out.Bytes(), pattern(size)) {
		t.Fatalf("reassembled %d bytes, differ from the %d written", out.Len(), size)
	}
}

func TestLogsHaveNoSecrets(t *testing.T) {
	var mu sync.Mutex
	var logs strings.Builder
	srv := &Server{Logf: func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(&logs, format+"\n", args...)
	}}
	e := newEnv(t, srv)
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(winrm.NewOpenShellRequest(e.url, rawParams).String()))
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(testUser, testPassword+"x")
	do(t, req)
	c := e.client(t, nil, testPassword)
	if _, _, _, err := c.RunWithContextWithString(req.Context(), "echo logged", ""); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	text := logs.String()
	mu.Unlock()
	if !strings.Contains(text, "authentication failed") || !strings.Contains(text, "echo logged") {
		t.Errorf("log misses the events:\n%s", text)
	}
	for _, secret := range []string{testPassword, base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword)), "Authorization"} {
		if strings.Contains(text, secret) {
			t.Errorf("log contains %q", secret)
		}
	}
}

// pywinrmShaped builds requests the way pywinrm's xmltodict output looks: an XML declaration,
// the env/a/w/rsp/p prefixes, mustUnderstand attributes, and every header pywinrm sends.
func pywinrmShaped(action, shellID, msgID, extraHeader, body string) string {
	sel := ""
	if shellID != "" {
		sel = `<w:SelectorSet><w:Selector Name="ShellId">` + shellID + `</w:Selector></w:SelectorSet>`
	}
	return `<?xml version="1.0" encoding="utf-8"?>` + "\n" +
		`<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ` +
		`xmlns:env="` + NSSoap + `" xmlns:a="` + NSAddress + `" xmlns:b="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" ` +
		`xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:x="` + NSTransfer + `" xmlns:w="` + NSWSMan + `" ` +
		`xmlns:p="` + NSWSManMS + `" xmlns:rsp="` + NSShell + `" xmlns:cfg="http://schemas.microsoft.com/wbem/wsman/1/config">` +
		`<env:Header><a:To>http://127.0.0.1:5985/wsman</a:To><a:ReplyTo><a:Address mustUnderstand="true">` + anonymousTo +
		`</a:Address></a:ReplyTo><w:MaxEnvelopeSize mustUnderstand="true">153600</w:MaxEnvelopeSize>` +
		`<a:MessageID>uuid:` + msgID + `</a:MessageID><w:Locale mustUnderstand="false" xml:lang="en-US"/>` +
		`<p:DataLocale mustUnderstand="false" xml:lang="en-US"/><w:OperationTimeout>PT20S</w:OperationTimeout>` +
		`<w:ResourceURI mustUnderstand="true">` + ResourceURICmd + `</w:ResourceURI>` +
		`<a:Action mustUnderstand="true">` + action + `</a:Action>` + sel + extraHeader +
		`</env:Header><env:Body>` + body + `</env:Body></env:Envelope>`
}

// TestPywinrmShapedSession walks pywinrm's sequence (open_shell, run_command, get_command_output,
// cleanup_command, close_shell) and reads each answer as pywinrm does.
func TestPywinrmShapedSession(t *testing.T) {
	e := newEnv(t, nil)
	const msg = "0f3a9c58-1d2e-4b6f-9a7c-5e4d3c2b1a00"
	resp, body := e.post(t, pywinrmShaped(ActionCreate, "", msg,
		`<w:OptionSet><w:Option Name="WINRS_NOPROFILE">FALSE</w:Option><w:Option Name="WINRS_CODEPAGE">437</w:Option></w:OptionSet>`,
		`<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("open_shell: HTTP %d\n%s", resp.StatusCode, body)
	}
	// pywinrm: next(node for node in root.findall('.//*') if node.get('Name') == 'ShellId').text
	ids := findText(t, body, NSWSMan, "Selector", "Name", "ShellId")
	if len(ids) != 1 {
		t.Fatalf("ShellId selectors %q", ids)
	}
	shellID := ids[0]
	// pywinrm asserts RelatesTo against its MessageID on cleanup and close.
	if rel := findText(t, body, NSAddress, "RelatesTo", "", ""); len(rel) != 1 || rel[0] != "uuid:"+msg {
		t.Errorf("RelatesTo %q", rel)
	}
	resp, body = e.post(t, pywinrmShaped(ActionCommand, shellID, msg,
		`<w:OptionSet><w:Option Name="WINRS_CONSOLEMODE_STDIN">TRUE</w:Option><w:Option Name="WINRS_SKIP_CMD_SHELL">FALSE</w:Option></w:OptionSet>`,
		`<rsp:CommandLine><rsp:Command>echo</rsp:Command><rsp:Arguments>from</rsp:Arguments><rsp:Arguments>pywinrm</rsp:Arguments></rsp:CommandLine>`))
	cmdIDs := findText(t, body, NSShell, "CommandId", "", "")
	if resp.StatusCode != http.StatusOK || len(cmdIDs) != 1 {
		t.Fatalf("run_command: HTTP %d ids %q", resp.StatusCode, cmdIDs)
	}
	cmdID := cmdIDs[0]
	var stdout bytes.Buffer
	for done := false; !done; {
		resp, body = e.post(t, pywinrmShaped(ActionReceive, shellID, msg, "",
			`<rsp:Receive><rsp:DesiredStream CommandId="`+cmdID+`">stdout stderr</rsp:DesiredStream></rsp:Receive>`))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("get_command_output: HTTP %d\n%s", resp.StatusCode, body)
		}
		for _, chunk := range findText(t, body, NSShell, "Stream", "Name", "stdout") {
			b, err := base64.StdEncoding.DecodeString(chunk)
			if err != nil {
				t.Fatal(err)
			}
			stdout.Write(b)
		}
		done = strings.Contains(string(body), `State="`+StateDone+`"`)
	}
	codes := findText(t, body, NSShell, "ExitCode", "", "")
	if len(codes) != 1 || codes[0] != "0" || stdout.String() != "from pywinrm\r\n" {
		t.Errorf("exit %q stdout %q", codes, stdout.String())
	}
	resp, body = e.post(t, pywinrmShaped(ActionSignal, shellID, msg, "",
		`<rsp:Signal CommandId="`+cmdID+`"><rsp:Code>`+SignalTerminate+`</rsp:Code></rsp:Signal>`))
	if rel := findText(t, body, NSAddress, "RelatesTo", "", ""); resp.StatusCode != http.StatusOK || len(rel) != 1 || rel[0] != "uuid:"+msg {
		t.Errorf("cleanup_command: HTTP %d RelatesTo %q", resp.StatusCode, rel)
	}
	resp, body = e.post(t, pywinrmShaped(ActionDelete, shellID, msg, "", ""))
	if rel := findText(t, body, NSAddress, "RelatesTo", "", ""); resp.StatusCode != http.StatusOK || len(rel) != 1 || rel[0] != "uuid:"+msg {
		t.Errorf("close_shell: HTTP %d RelatesTo %q", resp.StatusCode, rel)
	}
	if n := e.srv.ShellCount(); n != 0 {
		t.Errorf("%d shells left", n)
	}
}

// TestDeleteShellCancelsCommands: Delete cancels the shell's commands and ends a Receive that
// is waiting on one. (Done through raw requests: masterzen's Receive loop spins forever on the
// fault it gets when its shell disappears between two Receives, against Windows as here.)
func TestDeleteShellCancelsCommands(t *testing.T) {
	e := newEnv(t, nil)
	shellID := e.createShell(t)
	cmdID := e.startCommand(t, shellID, "block")
	waitFor(t, e.host.started, "the command to start")
	type answer struct {
		status int
		body   []byte
	}
	got := make(chan answer, 1)
	receive := winrm.NewGetOutputRequest(e.url, shellID, cmdID, "stdout stderr", winrm.NewParameters("PT60S", "en-US", 153600)).String()
	go func() {
		// PT60S: only the Delete can end this Receive within the test's wait.
		req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(receive))
		req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
		req.SetBasicAuth(testUser, testPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- answer{status: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		got <- answer{resp.StatusCode, body}
	}()
	b := e.srv.currentBoot()
	eventually(t, "the Receive to wait on the server", func() bool { return b.polling.Load() == 1 })
	resp, body := e.post(t, winrm.NewDeleteShellRequest(e.url, shellID, rawParams).String())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delete: HTTP %d\n%s", resp.StatusCode, body)
	}
	waitFor(t, e.host.cancelled, "Delete to cancel the Host ctx")
	select {
	case a := <-got:
		var out, errb bytes.Buffer
		done, code, err := winrm.ParseSlurpOutputErrResponse(string(a.body), &out, &errb)
		if a.status != http.StatusOK || err != nil || !done || code != ExitCodeInterrupted {
			t.Errorf("waiting Receive ended with HTTP %d done %v exit %d err %v", a.status, done, code, err)
		}
	case <-time.After(wait):
		t.Fatal("the waiting Receive did not end when its shell was deleted")
	}
	if n := e.srv.ShellCount(); n != 0 {
		t.Errorf("%d shells after Delete", n)
	}
	resp, body = e.post(t, winrm.NewGetOutputRequest(e.url, shellID, cmdID, "stdout stderr", rawParams).String())
	expectFault(t, resp, body, http.StatusInternalServerError, sender, xmlName{NSWSMan, "InvalidSelectors"})
}
