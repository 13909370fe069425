package wsman

import (
	"context"
	"errors"
	"fmt"
	"log"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults for the zero values of Server's limits, as Windows 7 / Server 2008 R2 ship them
// where Windows has the setting (MaxShellsPerUser 30, MaxEnvelopeSizekb 500, MaxTimeoutms 60000).
const (
	DefaultMaxShellsPerUser    = 30
	DefaultMaxEnvelopeSize     = 512000
	DefaultMaxOutputBuffer     = 1 << 20 // a choice of ours: Windows' pipe buffering is not a setting
	DefaultMaxOperationTimeout = 60 * time.Second
	defaultOperationTimeout    = 60 * time.Second
	// minEnvelopeSize is DSP0226's smallest MaxEnvelopeSize; smaller requests are treated as this.
	minEnvelopeSize = 8192
	// closeWait is how long Close waits for Host.Run calls to return after cancelling them.
	closeWait = 5 * time.Second
	// serverHeader is what Windows' HTTP.sys puts on every WinRM answer.
	serverHeader = "Microsoft-HTTPAPI/2.0"
)

// Server is a WinRM service: an http.Handler for POST /wsman speaking the WS-Management remote
// shell protocol over HTTP with Basic and NTLM (Negotiate) authentication. Set the fields before serving and do not
// change them afterwards.
//
// A Server is reusable: Close or Shutdown ends the current lifetime (every running command's
// ctx is cancelled, every shell forgotten, every listener and connection closed), and a later
// Serve starts a fresh lifetime with no shells, like a Windows host after a reboot. To restart
// on the same address, net.Listen it again and call Serve on the same Server (or a new one).
type Server struct {
	Host     Host   // runs the commands
	User     string // account name; compared case-insensitively, as Windows does
	Password string // never logged
	// Auth is which schemes are accepted; 0 means Basic and Negotiate (NTLM), as a Vagrant
	// box prepared with Basic on has them.
	Auth AuthSchemes

	// MaxShellsPerUser: 0 means DefaultMaxShellsPerUser; negative means no limit.
	MaxShellsPerUser int
	// MaxEnvelopeSize is the largest request accepted, in bytes (HTTP 413 beyond); 0 means the default.
	MaxEnvelopeSize int
	// MaxOutputBuffer bounds the bytes buffered per command and direction (stdout and stderr
	// together; stdin): a Host writing faster than the client receives blocks. 0 means the default.
	MaxOutputBuffer int
	// MaxOperationTimeout caps the OperationTimeout a client asks for; 0 means the default.
	MaxOperationTimeout time.Duration
	// ComputerName is the Machine of WSManFault details; empty means the host of the request URL.
	ComputerName string
	// WinRM11 answers as WinRM 1.1 (Vista, Server 2008): ids prefixed with "uuid:" and no
	// rsp:Shell in CreateResponse.
	WinRM11 bool
	// Logf, when set, receives one line per notable event (shell created/deleted, command
	// started/exited/signalled, fault, auth failure). It is called from many goroutines at once.
	// It never sees passwords or HTTP headers; client-supplied text is quoted.
	Logf func(format string, args ...any)
	// Inject, when set, is asked before each well-formed request is dispatched whether to
	// misbehave on purpose (a test's faults; Windows has no such setting).
	Inject func(action string) Injection

	mu      sync.Mutex
	boot    *boot
	servers map[*http.Server]struct{}

	authMu sync.Mutex
	conns  map[string]*ntlmConn // NTLM state by the connection's remote address
}

// Injection is what Server.Inject asks for one request; the zero value answers normally.
type Injection struct {
	Delay time.Duration // wait this long first
	Fail  bool          // answer HTTP 500 with an internal-error fault, leaving the request unrun
	Drop  bool          // close the connection without an answer, leaving the request unrun
}

// NewServer returns a Server with default limits.
func NewServer(host Host, user, password string) *Server {
	return &Server{Host: host, User: user, Password: password}
}

func (s *Server) maxShells() int {
	if s.MaxShellsPerUser == 0 {
		return DefaultMaxShellsPerUser
	}
	return s.MaxShellsPerUser
}

func (s *Server) maxEnvelope() int {
	if s.MaxEnvelopeSize <= 0 {
		return DefaultMaxEnvelopeSize
	}
	return max(s.MaxEnvelopeSize, minEnvelopeSize)
}

func (s *Server) maxBuffer() int {
	if s.MaxOutputBuffer <= 0 {
		return DefaultMaxOutputBuffer
	}
	return s.MaxOutputBuffer
}

func (s *Server) maxOperationTimeout() time.Duration {
	if s.MaxOperationTimeout <= 0 {
		return DefaultMaxOperationTimeout
	}
	return s.MaxOperationTimeout
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// currentBoot returns the running lifetime, starting one if the server was closed or never used.
func (s *Server) currentBoot() *boot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.boot == nil {
		s.boot = newBoot()
	}
	return s.boot
}

// ShellCount reports how many shells are open, for owners that check clients clean up.
func (s *Server) ShellCount() int {
	return s.currentBoot().shellCount()
}

// ServeHTTP answers one WinRM request (for use under another http.Server or httptest).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handle(s.currentBoot(), w, r)
}

// Serve accepts connections on l until Close or Shutdown. It returns http.ErrServerClosed then.
func (s *Server) Serve(l net.Listener) error {
	if l == nil {
		return errors.New("wsman: Serve: nil listener")
	}
	// Bind to the lifetime and register in one step, so a concurrent Close either sees this
	// http.Server (and closes it) or happened entirely before (and this Serve starts a new lifetime).
	s.mu.Lock()
	if s.boot == nil {
		s.boot = newBoot()
	}
	b := s.boot
	hs := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.handle(b, w, r) }),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(logfWriter{s}, "", 0),
		ConnState:         s.connState,
	}
	if s.servers == nil {
		s.servers = make(map[*http.Server]struct{})
	}
	s.servers[hs] = struct{}{}
	s.mu.Unlock()

	s.logf("wsman: serving on %s", l.Addr())
	err := hs.Serve(l)
	s.mu.Lock()
	delete(s.servers, hs)
	s.mu.Unlock()
	return err
}

// detach ends the current lifetime and hands back what must be stopped.
func (s *Server) detach() (*boot, []*http.Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.boot
	s.boot = nil
	servers := make([]*http.Server, 0, len(s.servers))
	for hs := range s.servers {
		servers = append(servers, hs)
	}
	s.servers = nil
	return b, servers
}

// Close cancels every running command, forgets every shell, closes listeners and connections,
// and waits (up to 5 s) for the Host's Run calls to return. The Server can Serve again afterwards.
func (s *Server) Close() error {
	b, servers := s.detach()
	if b != nil {
		b.stop()
	}
	var errs []error
	for _, hs := range servers {
		if err := hs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("wsman: closing listener: %w", err))
		}
	}
	if b != nil {
		ctx, cancel := context.WithTimeout(context.Background(), closeWait)
		defer cancel()
		if err := b.wait(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.logf("wsman: closed")
	return errors.Join(errs...)
}

// Shutdown is Close that lets in-flight answers finish: commands are cancelled first (so long
// polls end), then connections are drained until ctx ends; what is left then is closed.
func (s *Server) Shutdown(ctx context.Context) error {
	b, servers := s.detach()
	if b != nil {
		b.stop()
	}
	var errs []error
	for _, hs := range servers {
		if err := hs.Shutdown(ctx); err != nil {
			_ = hs.Close()
			errs = append(errs, fmt.Errorf("wsman: shutting down: %w", err))
		}
	}
	if b != nil {
		if err := b.wait(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.logf("wsman: shut down")
	return errors.Join(errs...)
}

// logfWriter routes net/http's own error log to Logf.
type logfWriter struct{ s *Server }

func (w logfWriter) Write(p []byte) (int, error) {
	w.s.logf("wsman: http: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// handle applies the HTTP-level checks in Windows' order (path, method, authentication,
// media type, size) and then the SOAP dispatch.
func (s *Server) handle(b *boot, w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", serverHeader)
	if !strings.EqualFold(r.URL.Path, "/wsman") {
		w.Header().Set("Content-Type", "text/html; charset=us-ascii")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("<h1>Not Found</h1>"))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if !s.authenticate(w, r) {
		return
	}
	if !soapMediaType(r.Header.Get("Content-Type")) {
		s.logf("wsman: %s: unsupported Content-Type %q (415)", r.RemoteAddr, r.Header.Get("Content-Type"))
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	if b.ctx.Err() != nil {
		serviceUnavailable(w)
		return
	}
	x := &exchange{s: s, b: b, w: w, r: r, machine: s.machine(r)}
	x.run()
}

func serviceUnavailable(w http.ResponseWriter) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusServiceUnavailable)
}

// soapMediaType accepts application/soap+xml in UTF-8 (charset may be omitted).
func soapMediaType(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/soap+xml" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

func (s *Server) machine(r *http.Request) string {
	if s.ComputerName != "" {
		return s.ComputerName
	}
	if host, _, err := net.SplitHostPort(r.Host); err == nil && host != "" {
		return host
	}
	if r.Host != "" {
		return r.Host
	}
	return "localhost"
}
