package wsman

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// exchange is one request being answered.
type exchange struct {
	s         *Server
	b         *boot
	w         http.ResponseWriter
	r         *http.Request
	req       *request
	relatesTo string
	machine   string
}

// run reads, parses and dispatches the request.
func (x *exchange) run() {
	limit := x.s.maxEnvelope()
	if x.r.ContentLength > int64(limit) {
		x.drain()
		x.fail(faultEncodingLimit(limit), fmt.Sprintf("request of %d bytes", x.r.ContentLength))
		return
	}
	data, err := io.ReadAll(io.LimitReader(x.r.Body, int64(limit)+1))
	if err != nil {
		x.s.logf("wsman: %s: reading request: %v", x.r.RemoteAddr, err)
		return
	}
	if len(data) > limit {
		x.drain()
		x.fail(faultEncodingLimit(limit), "request body over the limit")
		return
	}
	req, err := parseRequest(data)
	if err != nil {
		if errors.Is(err, errVersionMismatch) {
			x.fail(faultVersionMismatch(), err.Error())
		} else {
			x.fail(faultMalformed(), err.Error())
		}
		return
	}
	x.req = req
	h := &req.Header
	x.relatesTo = strings.TrimSpace(h.MessageID)
	action := strings.TrimSpace(h.Action)
	switch {
	case action == "":
		x.fail(faultHeaderRequired("Action"), "no a:Action")
		return
	case x.relatesTo == "":
		x.fail(faultHeaderRequired("MessageID"), "no a:MessageID")
		return
	}
	switch action {
	case ActionCreate, ActionDelete, ActionCommand, ActionReceive, ActionSend, ActionSignal:
	default:
		x.fail(faultActionNotSupported(), "action "+action)
		return
	}
	if uri := strings.TrimSpace(h.ResourceURI); uri != "" && !strings.EqualFold(uri, ResourceURICmd) {
		x.fail(faultUnknownResource(uri), "resource "+uri)
		return
	}
	if x.s.Inject != nil && !x.inject(x.s.Inject(action)) {
		return
	}
	switch action {
	case ActionCreate:
		x.create()
	case ActionDelete:
		x.delete()
	case ActionCommand:
		x.command()
	case ActionReceive:
		x.receive()
	case ActionSend:
		x.send()
	case ActionSignal:
		x.signal()
	}
}

// inject applies an Injection and reports whether the request is to be answered normally.
func (x *exchange) inject(in Injection) bool {
	if in.Delay > 0 {
		t := time.NewTimer(in.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-x.r.Context().Done():
			return false
		case <-x.b.ctx.Done():
			serviceUnavailable(x.w)
			return false
		}
	}
	switch {
	case in.Drop:
		x.s.logf("wsman: %s: connection dropped on purpose (fault injection)", x.r.RemoteAddr)
		if hj, ok := x.w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return false
			}
		}
		fallthrough // no connection of its own to drop (HTTP/2): fail the request instead
	case in.Fail:
		x.fail(faultInternalError(), "fault injection")
		return false
	}
	return true
}

// maxDrain bounds how much of an oversize request is read and dropped so the client, still
// sending, gets the 413 instead of a reset connection; beyond it the connection is closed.
const maxDrain = 8 << 20

func (x *exchange) drain() {
	_, _ = io.CopyN(io.Discard, x.r.Body, maxDrain)
}

func (x *exchange) reply(body []byte) {
	h := x.w.Header()
	h.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(http.StatusOK)
	_, _ = x.w.Write(body)
}

// fail answers with a fault; why goes to the log only.
func (x *exchange) fail(f *fault, why string) {
	body := f.encode(x.relatesTo, x.machine)
	h := x.w.Header()
	h.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(f.status)
	_, _ = x.w.Write(body)
	if f.subcode != "w:TimedOut" {
		x.s.logf("wsman: %s: fault %s %s (HTTP %d): %q", x.r.RemoteAddr, f.code, f.subcode, f.status, why)
	}
}

// shell finds the shell the ShellId selector names, or answers the fault Windows sends.
func (x *exchange) shell() *shell {
	id, ok := x.req.Header.selector("ShellId")
	if !ok || id == "" {
		x.fail(faultSelectorRequired("ShellId"), "no ShellId selector")
		return nil
	}
	sh := x.b.shell(id)
	if sh == nil {
		x.fail(faultShellNotFound(id), "unknown shell "+id)
	}
	return sh
}

// streamList reads an InputStreams/OutputStreams value; nil means the element was absent.
func streamList(v *string, def []string, allowed ...string) ([]string, error) {
	if v == nil {
		return def, nil
	}
	names := strings.Fields(*v)
	for _, n := range names {
		ok := false
		for _, a := range allowed {
			if strings.EqualFold(n, a) {
				ok = true
			}
		}
		if !ok {
			return nil, fmt.Errorf("unknown stream %q", n)
		}
	}
	return names, nil
}

func (x *exchange) create() {
	body := x.req.Body.Shell
	if body == nil {
		body = &shellBody{}
	}
	// "pr" is WinRS's prompt-response input stream; accepted and never fed.
	in, err := streamList(body.InputStreams, []string{"stdin"}, "stdin", "pr")
	if err != nil {
		x.fail(faultInvalidParameter("rsp:InputStreams: "+err.Error()), err.Error())
		return
	}
	out, err := streamList(body.OutputStreams, []string{"stdout", "stderr"}, "stdout", "stderr")
	if err != nil {
		x.fail(faultInvalidParameter("rsp:OutputStreams: "+err.Error()), err.Error())
		return
	}
	id := newGUID()
	if x.s.WinRM11 {
		id = "uuid:" + id
	}
	sh := newShell(x.b.ctx, id, in, out)
	// Options that change how cmd.exe starts; recorded, harmless here.
	if cp, ok := x.req.Header.option("WINRS_CODEPAGE"); ok {
		if _, err := strconv.ParseUint(cp, 10, 32); err != nil {
			x.fail(faultInvalidParameter("WINRS_CODEPAGE "+cp), "bad codepage")
			return
		}
		sh.codepage = cp
	}
	if np, ok := x.req.Header.option("WINRS_NOPROFILE"); ok {
		sh.noProfile = strings.EqualFold(np, "TRUE")
	}
	switch err := x.b.addShell(sh, x.s.maxShells()); {
	case errors.Is(err, errQuota):
		sh.cancel()
		x.fail(faultMaxShells(x.s.maxShells()), "shell quota")
		return
	case err != nil:
		sh.cancel()
		serviceUnavailable(x.w)
		return
	}
	clientIP := x.r.RemoteAddr
	if host, _, err := net.SplitHostPort(x.r.RemoteAddr); err == nil {
		clientIP = host
	}
	address := "http://" + x.r.Host + "/wsman"
	x.s.logf("wsman: %s: shell %s created (in %q, out %q)", x.r.RemoteAddr, id, in, out)
	x.reply(encodeCreateResponse(x.relatesTo, address, sh, x.s.User, clientIP, x.s.WinRM11))
}

func (x *exchange) delete() {
	id, ok := x.req.Header.selector("ShellId")
	if !ok || id == "" {
		x.fail(faultSelectorRequired("ShellId"), "no ShellId selector")
		return
	}
	sh := x.b.removeShell(id)
	if sh == nil {
		x.fail(faultShellNotFound(id), "unknown shell "+id)
		return
	}
	sh.cancel()
	x.s.logf("wsman: %s: shell %s deleted", x.r.RemoteAddr, sh.id)
	x.reply(encodeEmptyResponse(actionDeleteResponse, x.relatesTo, ""))
}

// maxLoggedLine keeps upload chunks (thousands of base64 characters) out of the log.
const maxLoggedLine = 160

func shorten(s string) string {
	if len(s) <= maxLoggedLine {
		return s
	}
	return s[:maxLoggedLine] + fmt.Sprintf("...(%d bytes)", len(s))
}

func (x *exchange) command() {
	sh := x.shell()
	if sh == nil {
		return
	}
	cl := x.req.Body.CommandLine
	if cl == nil || cl.Command == nil {
		x.fail(faultInvalidParameter("rsp:CommandLine/rsp:Command is missing"), "no command")
		return
	}
	if x.s.Host == nil {
		x.fail(faultInvalidParameter("the server has no Host to run commands"), "Server.Host is nil")
		return
	}
	line := strings.Join(append([]string{*cl.Command}, cl.Arguments...), " ")
	id := strings.TrimSpace(cl.CommandID)
	if id == "" {
		id = newGUID()
		if x.s.WinRM11 {
			id = "uuid:" + id
		}
	}
	c := newCommand(sh.ctx, id, sh.id, line, sh.has(sh.inputStreams, "stdin"), sh.outputStreams, x.s.maxBuffer())
	if err := sh.add(c); err != nil {
		c.release()
		x.fail(faultInvalidParameter("CommandId "+id+": "+err.Error()), err.Error())
		return
	}
	cmd := Command{Line: line, Stdin: stdinReader{c}, Stdout: streamWriter{c, streamStdout},
		Stderr: streamWriter{c, streamStderr}, ShellID: sh.id, CommandID: id}
	host := x.s.Host
	err := x.b.startRun(func() {
		code := x.s.runHost(host, c, cmd)
		c.finish(code)
		sh.noteFinished(id)
	})
	if err != nil {
		sh.remove(id)
		serviceUnavailable(x.w)
		return
	}
	x.s.logf("wsman: %s: shell %s command %q started: %q", x.r.RemoteAddr, sh.id, id, shorten(line))
	x.reply(encodeCommandResponse(x.relatesTo, id))
}

// runHost calls Host.Run; a panicking Host ends its command as a crashed process does on
// Windows (STATUS_ACCESS_VIOLATION) instead of taking the server down.
func (s *Server) runHost(host Host, c *command, cmd Command) (code int) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			s.logf("wsman: command %q (%q) panicked: %v\n%s", c.id, shorten(c.line), p, debug.Stack())
			code = statusAccessViolation
		}
		s.logf("wsman: command %q exited %d after %s", c.id, code, time.Since(start).Round(time.Millisecond))
	}()
	return host.Run(c.ctx, cmd)
}

// statusAccessViolation is 0xC0000005 as a signed exit code.
const statusAccessViolation = -1073741819

// operationTimeout is the request's OperationTimeout, capped; absent or unreadable means 60 s.
func (x *exchange) operationTimeout() time.Duration {
	d := defaultOperationTimeout
	if v := strings.TrimSpace(x.req.Header.OperationTimeout); v != "" {
		if parsed, err := parseDuration(v); err == nil {
			d = parsed
		}
	}
	return min(d, x.s.maxOperationTimeout())
}

// envelopeLimit is the largest answer the client accepts (its MaxEnvelopeSize), within ours.
func (x *exchange) envelopeLimit() int {
	limit := x.s.maxEnvelope()
	if v, err := strconv.Atoi(strings.TrimSpace(x.req.Header.MaxEnvelopeSize)); err == nil && v > 0 {
		limit = min(limit, v)
	}
	return max(limit, minEnvelopeSize)
}

func (x *exchange) receive() {
	sh := x.shell()
	if sh == nil {
		return
	}
	rb := x.req.Body.Receive
	if rb == nil || len(rb.Desired) == 0 {
		x.fail(faultInvalidParameter("rsp:Receive/rsp:DesiredStream is missing"), "no DesiredStream")
		return
	}
	desired := rb.Desired[0]
	var c *command
	if id := strings.TrimSpace(desired.CommandID); id != "" {
		c = sh.get(id)
	} else {
		c = sh.only()
	}
	if c == nil {
		x.fail(faultCommandNotFound(), "unknown command "+desired.CommandID)
		return
	}
	var want [2]bool
	for _, name := range strings.Fields(desired.Streams) {
		for i, known := range streamNames {
			if strings.EqualFold(name, known) {
				want[i] = true
			}
		}
	}
	budget := receiveBudget(x.envelopeLimit())
	timer := time.NewTimer(x.operationTimeout())
	defer timer.Stop()
	x.b.polling.Add(1)
	defer x.b.polling.Add(-1)
	for {
		res, ready, changed := c.collect(want, budget)
		if ready {
			x.reply(encodeReceiveResponse(x.relatesTo, c.id, res))
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			x.fail(faultTimedOut(), "receive timed out")
			return
		case <-x.r.Context().Done():
			return
		case <-x.b.ctx.Done():
			serviceUnavailable(x.w)
			return
		}
	}
}

func (x *exchange) send() {
	sh := x.shell()
	if sh == nil {
		return
	}
	sb := x.req.Body.Send
	if sb == nil || len(sb.Streams) == 0 {
		x.fail(faultInvalidParameter("rsp:Send/rsp:Stream is missing"), "no stream")
		return
	}
	if !sh.has(sh.inputStreams, "stdin") {
		x.fail(faultInvalidParameter("the shell was created without the stdin input stream"), "no stdin")
		return
	}
	type input struct {
		c    *command
		data []byte
		end  bool
	}
	inputs := make([]input, 0, len(sb.Streams))
	for _, st := range sb.Streams {
		if !strings.EqualFold(st.Name, "stdin") {
			x.fail(faultInvalidParameter("stream "+st.Name+" is not an input stream"), "bad stream name")
			return
		}
		c := sh.get(strings.TrimSpace(st.CommandID))
		if c == nil {
			x.fail(faultCommandNotFound(), "unknown command "+st.CommandID)
			return
		}
		// Base64 may be wrapped; whitespace is not part of the data.
		data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(st.Data), ""))
		if err != nil {
			x.fail(faultInvalidParameter("stdin is not base64"), err.Error())
			return
		}
		end := strings.TrimSpace(st.End)
		inputs = append(inputs, input{c: c, data: data, end: end == "true" || end == "1"})
	}
	timer := time.NewTimer(x.operationTimeout())
	defer timer.Stop()
	for _, in := range inputs {
		err := in.c.sendStdin(x.r.Context(), in.data, in.end, timer.C)
		switch {
		case errors.Is(err, errSendTimeout):
			x.fail(faultTimedOut(), "stdin buffer full")
			return
		case err != nil:
			return // client went away
		}
	}
	x.reply(encodeEmptyResponse(actionSendResponse, x.relatesTo, "<rsp:SendResponse></rsp:SendResponse>"))
}

func (x *exchange) signal() {
	sh := x.shell()
	if sh == nil {
		return
	}
	sig := x.req.Body.Signal
	if sig == nil || strings.TrimSpace(sig.CommandID) == "" {
		x.fail(faultInvalidParameter("rsp:Signal needs a CommandId"), "no CommandId")
		return
	}
	c := sh.get(strings.TrimSpace(sig.CommandID))
	if c == nil {
		x.fail(faultCommandNotFound(), "unknown command "+sig.CommandID)
		return
	}
	switch code := strings.TrimSpace(sig.Code); {
	case strings.EqualFold(code, SignalTerminate):
		c.terminate()
		sh.remove(c.id)
	case strings.EqualFold(code, SignalCtrlC), strings.EqualFold(code, SignalCtrlBreak):
		c.interrupt()
	default:
		x.fail(faultInvalidParameter("unknown signal code "+code), "bad signal")
		return
	}
	x.s.logf("wsman: %s: command %s signalled %s", x.r.RemoteAddr, c.id, sig.Code[strings.LastIndex(sig.Code, "/")+1:])
	x.reply(encodeEmptyResponse(actionSignalResponse, x.relatesTo, "<rsp:SignalResponse></rsp:SignalResponse>"))
}
