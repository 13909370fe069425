package lab

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/go-ntlmssp"
	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

// transport is the WinRM client's HTTP layer (winrm.Transporter). The library's own Post
// hands an HTTP 500's fault body back as if it were an answer, and its requests carry no
// deadline but a response-header timeout; this one turns every non-200 into an error that
// says the status and the fault's reason, puts a deadline on every request, and repeats a
// request that failed in a way that left it unrun on the guest (a dropped connection on a
// request that is safe to repeat, an internal error, a busy service), a few times.
type transport struct {
	url        string
	user, pass string
	dial       func(network, addr string) (net.Conn, error)
	limit      time.Duration // one request's deadline
	logf       func(format string, args ...any)
	// ntlm authenticates each connection with NTLMv2 (go-ntlmssp's Negotiator, as the
	// library's ClientNTLM does) instead of sending Basic credentials on every request.
	ntlm bool

	client *http.Client
}

// Retries of one request, and the pause before each.
const (
	maxAttempts  = 4
	retryBackoff = 250 * time.Millisecond
	maxErrBody   = 64 << 10 // a fault body is a few KiB
)

var _ winrm.Transporter = (*transport)(nil)

// Transport builds the HTTP client for the endpoint, as the library's own does.
func (t *transport) Transport(ep *winrm.Endpoint) error {
	// TLS 1.0 too: Vista and Server 2008 speak no later version (docs/winrm.md); the highest
	// version both sides speak is still chosen.
	tlsCfg := &tls.Config{InsecureSkipVerify: ep.Insecure, ServerName: ep.TLSServerName, MinVersion: tls.VersionTLS10} //nolint:gosec // the target's choice
	if len(ep.CACert) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ep.CACert) {
			return errors.New("the CA certificate is not PEM")
		}
		tlsCfg.RootCAs = pool
	}
	var rt http.RoundTripper = &http.Transport{
		Proxy: http.ProxyFromEnvironment, // as the library's own; never used for loopback
		// The tracker lets Session.Close end requests in flight.
		DialContext:           func(_ context.Context, network, addr string) (net.Conn, error) { return t.dial(network, addr) },
		TLSClientConfig:       tlsCfg,
		ResponseHeaderTimeout: ep.Timeout,
		IdleConnTimeout:       90 * time.Second,
	}
	if t.ntlm {
		// The Negotiator turns the request's Basic credentials into an NTLM handshake, but
		// falls back to sending them as Basic when the guest offers no Negotiate: noBasic
		// stops that, so asking for NTLM never puts the password on the wire.
		rt = ntlmssp.Negotiator{RoundTripper: noBasic{rt}}
	}
	t.client = &http.Client{Transport: rt}
	return nil
}

// errBasicOnly is what an NTLM transport says when the guest offers only Basic.
var errBasicOnly = errors.New("the guest offers only Basic authentication, but the target's auth is ntlm " +
	"(wfplab does not fall back to Basic): set auth: basic, or turn Negotiate on in the guest " +
	"(winrm set winrm/config/service/auth @{Negotiate=\"true\"})")

// noBasic refuses to send a request carrying Basic credentials.
type noBasic struct{ next http.RoundTripper }

func (n noBasic) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasPrefix(r.Header.Get("Authorization"), "Basic ") {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, errBasicOnly
	}
	return n.next.RoundTrip(r)
}

// Post sends one request, repeating it while it failed without running.
func (t *transport) Post(_ *winrm.Client, req *soap.SoapMessage) (string, error) {
	body := req.String()
	action := soapAction(body)
	var err error
	for attempt := 1; ; attempt++ {
		var out string
		var retry bool
		out, retry, err = t.post(body, action)
		if err == nil || !retry || attempt == maxAttempts {
			if err != nil && retry {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return out, err
		}
		t.logf("WinRM %s failed (%v); trying again (attempt %d of %d)", shortAction(action), err, attempt+1, maxAttempts)
		time.Sleep(retryBackoff * time.Duration(attempt))
	}
}

// post is one attempt; retry says whether it left the request unrun and may be repeated.
func (t *transport) post(body, action string) (out string, retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), t.limit)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, strings.NewReader(body))
	if err != nil {
		return "", false, fmt.Errorf("cannot build the HTTP request: %w", err)
	}
	hr.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	hr.SetBasicAuth(t.user, t.pass)
	resp, err := t.client.Do(hr)
	if err != nil {
		if errors.Is(err, errSessionClosed) {
			return "", false, err
		}
		if errors.Is(err, errBasicOnly) {
			return "", false, errBasicOnly
		}
		if hint := tlsProblem(err); hint != nil {
			return "", false, hint
		}
		if ctx.Err() != nil {
			return "", false, fmt.Errorf("no answer within %v: %w", t.limit, err)
		}
		// A connection that broke before an answer: repeat what the guest cannot have acted
		// on twice. A Command or Send may have run; the caller decides about those.
		return "", dropSafe(action) && connDropped(err), fmt.Errorf("unknown error %w", err)
	}
	defer resp.Body.Close()
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrBody+1<<20))
	if resp.StatusCode == http.StatusOK {
		if rerr != nil {
			return "", dropSafe(action) && connDropped(rerr), fmt.Errorf("error while reading request body %w", rerr)
		}
		if !strings.Contains(resp.Header.Get("Content-Type"), "application/soap+xml") {
			return "", false, fmt.Errorf("http response error: %d - invalid content type", resp.StatusCode)
		}
		if err := wellFormed(data); err != nil {
			// The library's XPath parsing panics on some malformed answers, in a goroutine of
			// its own where nothing could recover: a broken guest must not take wfplab down.
			return "", false, fmt.Errorf("the answer is not well-formed XML (%v); the WinRM service or something between is broken", err)
		}
		return string(data), false, nil
	}
	reason := faultReason(data)
	err = fmt.Errorf("http error %d: %s", resp.StatusCode, reason)
	// An internal error or a busy service refused the request before running it.
	transient := resp.StatusCode == http.StatusServiceUnavailable ||
		resp.StatusCode == http.StatusInternalServerError && strings.Contains(string(data), ":InternalError<")
	return "", transient, err
}

// tlsProblem explains a failed TLS handshake or a scheme mismatch, or is nil.
func tlsProblem(err error) error {
	var verr *tls.CertificateVerificationError
	var herr x509.HostnameError
	switch {
	case errors.As(err, &herr):
		return fmt.Errorf("the guest's HTTPS certificate does not name the address connected to (%v): "+
			"connect by a name or address the certificate holds, or set insecure: true to skip the check", herr)
	case errors.As(err, &verr):
		return fmt.Errorf("the guest's HTTPS certificate is not trusted (%v): give the PEM file of the CA that "+
			"signed it as the target's ca_file, or set insecure: true to skip the check", verr.Err)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return errors.New("the guest answers plain HTTP on this port: set https: false, or give the port of its HTTPS listener")
	case strings.Contains(err.Error(), "tls: first record does not look like a TLS handshake"):
		return errors.New("the guest answers plain HTTP on this port: set https: false, or give the port of its HTTPS listener")
	}
	return nil
}

// dropSafe says whether a request may be repeated after its connection broke: Receive's
// output stays queued until a Receive answers, and the others are idempotent.
func dropSafe(action string) bool {
	switch shortAction(action) {
	case "Receive", "Signal", "Delete", "Create":
		return true
	}
	return false
}

func connDropped(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe") ||
		strings.Contains(err.Error(), "server closed idle connection")
}

// wellFormed checks that data is one well-formed XML document.
func wellFormed(data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	roots := 0
	for depth := 0; ; {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			if roots != 1 {
				return fmt.Errorf("%d root elements", roots)
			}
			return nil
		}
		if err != nil {
			return err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(tok)) > 0 {
				return errors.New("text outside the root element")
			}
		}
	}
}

var (
	actionRE = regexp.MustCompile(`<(?:\w+:)?Action\b[^>]*>([^<]*)<`)
	reasonRE = regexp.MustCompile(`<(?:\w+:)?Text\b[^>]*>([^<]*)<`)
	subRE    = regexp.MustCompile(`<(?:\w+:)?Subcode>\s*<(?:\w+:)?Value>([^<]*)<`)
)

func soapAction(body string) string {
	if m := actionRE.FindStringSubmatch(body); m != nil {
		return strings.TrimSpace(m[1])
	}
	return ""
}

func shortAction(action string) string {
	if i := strings.LastIndexByte(action, '/'); i >= 0 {
		return action[i+1:]
	}
	return action
}

// faultReason is a fault body's subcode and reason text (which keeps "OperationTimeout" for
// the library's receive loop), or the start of a body that is no fault.
func faultReason(data []byte) string {
	body := string(data)
	m := reasonRE.FindStringSubmatch(body)
	if m == nil {
		body = strings.Join(strings.Fields(body), " ")
		if len(body) > 200 {
			body = body[:200] + "..."
		}
		if body == "" {
			return "(no body)"
		}
		return body
	}
	reason := strings.TrimSpace(m[1])
	if reason == "" {
		reason = "(no reason given)"
	}
	if s := subRE.FindStringSubmatch(body); s != nil {
		reason = strings.TrimSpace(s[1]) + ": " + reason
	}
	return reason
}
