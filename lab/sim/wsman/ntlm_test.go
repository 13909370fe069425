package wsman

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"
)

// authenticateMessage builds an AUTHENTICATE_MESSAGE by hand, as [MS-NLMP] 2.2.1.3 lays it out.
func authenticateMessage(user, domain string, nt []byte) []byte {
	fields := [][]byte{nil, nt, utf16le(domain), utf16le(user), nil}
	msg := make([]byte, ntlmAuthFixedLen)
	copy(msg, ntlmSignature)
	binary.LittleEndian.PutUint32(msg[8:], 3)
	for i, f := range fields {
		putVarField(msg[12+8*i:], len(f), len(msg))
		msg = append(msg, f...)
	}
	binary.LittleEndian.PutUint32(msg[60:], ntlmUnicode|ntlmNTLM|ntlmExtendedSecure)
	return msg
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// TestNTLMv2KnownAnswer checks the verifier against [MS-NLMP] 4.2.4's NTLMv2 example (user
// "User", domain "Domain", password "Password"), not against go-ntlmssp, so a shared mistake
// cannot pass.
func TestNTLMv2KnownAnswer(t *testing.T) {
	var c ntlmConn
	copy(c.challenge[:], mustHex("0123456789abcdef"))
	c.target, c.pending = "Domain", true
	blob := mustHex("0101 0000 0000 0000 0000000000000000 aaaaaaaaaaaaaaaa 00000000" +
		"02000c0044006f006d00610069006e00 01000c00530065007200760065007200 00000000 00000000")
	proof := mustHex("68cd0ab851e51c96aabc927bebef6a1c")
	nt := append(append([]byte{}, proof...), blob...)
	if _, err := ntlmVerify(authenticateMessage("User", "Domain", nt), c, "user", "Password"); err != nil {
		t.Fatalf("the specification's own response was refused: %v", err)
	}
	for name, tc := range map[string]struct {
		user, domain, password string
		nt                     []byte
		want                   string
	}{
		"wrong password": {"User", "Domain", "password", nt, "does not match"},
		"other user":     {"Admin", "Domain", "Password", nt, "unknown user"},
		"other domain":   {"User", "CORP", "Password", nt, "only local accounts"},
		"NTLMv1":         {"User", "Domain", "Password", nt[:24], "NTLMv2 only"},
		"anonymous":      {"", "", "", nil, "anonymous"},
		"tampered blob":  {"User", "Domain", "Password", append(append([]byte{}, nt[:len(nt)-1]...), 1), "does not match"},
	} {
		_, err := ntlmVerify(authenticateMessage(tc.user, tc.domain, tc.nt), c, "User", tc.password)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error saying %q", name, err, tc.want)
		}
	}
	// Truncated and lying lengths are errors, never panics.
	msg := authenticateMessage("User", "Domain", nt)
	for n := range len(msg) {
		if _, err := ntlmVerify(msg[:n], c, "User", "Password"); err == nil {
			t.Fatalf("a message cut to %d bytes was accepted", n)
		}
	}
	binary.LittleEndian.PutUint32(msg[24:], 0xfffffff0)
	if _, err := ntlmVerify(msg, c, "User", "Password"); err == nil {
		t.Fatal("an offset past the end was accepted")
	}
}

// authLog records what each request offered and what it got.
type authLog struct {
	next http.Handler
	mu   sync.Mutex
	seen []string // "<scheme> <NTLM message type> -> <status>"
}

func (a *authLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	kind := scheme
	if b, err := base64.StdEncoding.DecodeString(tok); err == nil && ntlmMessageType(b) != 0 {
		kind += " type" + string(rune('0'+ntlmMessageType(b)))
	}
	if kind == "" {
		kind = "none"
	}
	c := &capture{ResponseWriter: w}
	a.next.ServeHTTP(c, r)
	a.mu.Lock()
	a.seen = append(a.seen, kind+" -> "+http.StatusText(c.status))
	a.mu.Unlock()
}

func (a *authLog) log() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

// ntlmEnv is a server with Basic off behind an authLog.
func ntlmEnv(t *testing.T) (*env, *authLog) {
	t.Helper()
	var al *authLog
	e := newEnvWrapped(t, &Server{Auth: AuthNegotiate}, func(h http.Handler) http.Handler {
		al = &authLog{next: h}
		return al
	})
	return e, al
}

func ntlmClient(t *testing.T, e *env, password string) *winrm.Client {
	params := winrm.NewParameters("PT60S", "en-US", 153600)
	params.TransportDecorator = func() winrm.Transporter { return &winrm.ClientNTLM{} }
	return e.client(t, params, password)
}

// TestNTLMWithClient drives the unmodified library's ClientNTLM (go-ntlmssp's Negotiator)
// against a guest with Basic off: the handshake on the wire is what it sends over plain
// HTTP, and the connection stays authenticated afterwards.
func TestNTLMWithClient(t *testing.T) {
	e, al := ntlmEnv(t)
	c := ntlmClient(t, e, testPassword)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out, stderr, code, err := c.RunWithContextWithString(ctx, "echo over ntlm", "")
	if err != nil || code != 0 || out != "over ntlm\r\n" || stderr != "" {
		t.Fatalf("Run: out %q stderr %q code %d err %v", out, stderr, code, err)
	}
	// The library opens a second connection for its receive loop: each connection does the
	// handshake once, then carries requests without credentials.
	seen := al.log()
	count := map[string]int{}
	for _, s := range seen {
		count[s]++
	}
	hs := count["Negotiate type3 -> OK"]
	if hs == 0 || count["none -> Unauthorized"] != hs || count["Negotiate type1 -> Unauthorized"] != hs ||
		count["none -> OK"] == 0 || len(seen) != 3*hs+count["none -> OK"] {
		t.Fatalf("exchanges %q: want handshakes (none 401, type1 401, type3 OK) and then requests without credentials", seen)
	}
	if seen[0] != "none -> Unauthorized" || seen[1] != "Negotiate type1 -> Unauthorized" {
		t.Errorf("exchanges %q should start with the handshake", seen)
	}
	for _, s := range seen {
		if strings.HasPrefix(s, "Basic") {
			t.Errorf("the client sent Basic credentials to a guest that offers only Negotiate: %q", seen)
		}
	}
}

func TestNTLMWrongPassword(t *testing.T) {
	e, al := ntlmEnv(t)
	var logs bytes.Buffer
	var mu sync.Mutex
	e.srv.Logf = func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logs.WriteString(strings.TrimSpace(fmt.Sprintf(format, args...)) + "\n")
	}
	c := ntlmClient(t, e, "not-the-password")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, _, _, err := c.RunWithContextWithString(ctx, "echo hi", "")
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("want a 401 error, got %v", err)
	}
	if seen := al.log(); len(seen) != 3 || seen[2] != "Negotiate type3 -> Unauthorized" {
		t.Errorf("exchanges %q, want the handshake refused at its third step", seen)
	}
	mu.Lock()
	got := logs.String()
	mu.Unlock()
	if !strings.Contains(got, "does not match the password") || strings.Contains(got, testPassword) {
		t.Errorf("server log %q: want the reason, never the password", got)
	}
	if e.srv.ShellCount() != 0 {
		t.Error("a shell was created without authentication")
	}
	// Basic is off: the right password over Basic is refused too.
	_, _, _, err = e.client(t, nil, testPassword).RunWithContextWithString(ctx, "echo hi", "")
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Basic with Basic off: want a 401 error, got %v", err)
	}
}

// TestNTLMChallengeIsPerConnection: an AUTHENTICATE_MESSAGE on a connection that got no
// challenge, or replayed after use, is refused.
func TestNTLMChallengeIsPerConnection(t *testing.T) {
	e, _ := ntlmEnv(t)
	client := &http.Client{Transport: &http.Transport{}, Timeout: wait}
	defer client.CloseIdleConnections()
	post := func(c *http.Client, auth string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader("<x/>"))
		req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	neg := "Negotiate TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw=="
	resp := post(client, neg)
	ch := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(ch, "Negotiate TlRMTVNTUAACAAAA") {
		t.Fatalf("negotiate: HTTP %d, WWW-Authenticate %q; want 401 with a CHALLENGE_MESSAGE", resp.StatusCode, ch)
	}
	tok, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(ch, "Negotiate "))
	if flags := binary.LittleEndian.Uint32(tok[20:]); flags&ntlmKeyExch != 0 || flags&ntlmTargetInfo == 0 {
		t.Errorf("challenge flags %#x: key exchange must not be offered unasked, target info must be", flags)
	}
	other := &http.Client{Transport: &http.Transport{}, Timeout: wait}
	defer other.CloseIdleConnections()
	auth := "Negotiate " + base64.StdEncoding.EncodeToString(authenticateMessage(testUser, "", make([]byte, 60)))
	if resp := post(other, auth); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("AUTHENTICATE on a connection without a challenge: HTTP %d, want 401", resp.StatusCode)
	}
	if resp := post(client, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no credentials after an unanswered challenge: HTTP %d, want 401", resp.StatusCode)
	}
}

// FuzzNTLMMessages: any token a client sends, as NEGOTIATE or AUTHENTICATE, is an answer or
// an error, never a panic, and never accepted without the password.
func FuzzNTLMMessages(f *testing.F) {
	var c ntlmConn
	copy(c.challenge[:], mustHex("0123456789abcdef"))
	c.target, c.pending = "Domain", true
	f.Add(authenticateMessage("User", "Domain", mustHex("68cd0ab851e51c96aabc927bebef6a1c0101000000000000")))
	neg, _ := base64.StdEncoding.DecodeString("TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==")
	f.Add(neg)
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, _, _ = ntlmChallenge(msg, "HOST", time.Unix(0, 0))
		_ = ntlmMessageType(msg)
		if _, err := ntlmVerify(msg, c, "User", "Password"); err == nil {
			// Only a true NTLMv2 proof passes; the fuzzer cannot forge HMAC-MD5 by chance.
			t.Fatalf("accepted %x", msg)
		}
	})
}
