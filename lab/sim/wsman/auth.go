package wsman

import (
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"time"
)

// AuthSchemes says which HTTP authentication schemes the server accepts.
type AuthSchemes uint8

const (
	// AuthBasic is "Authorization: Basic" on every request (winrm/config/service/auth Basic).
	AuthBasic AuthSchemes = 1 << iota
	// AuthNegotiate is NTLMv2 under "Authorization: Negotiate" or "NTLM", once per
	// connection (winrm/config/service/auth Negotiate).
	AuthNegotiate
)

// maxNTLMConns bounds the per-connection NTLM state kept when the server runs under
// another http.Server (ServeHTTP), which never says when a connection closes.
const maxNTLMConns = 4096

func (s *Server) schemes() AuthSchemes {
	if s.Auth == 0 {
		return AuthBasic | AuthNegotiate
	}
	return s.Auth
}

// authenticate checks a request's credentials. It returns true when the request may run;
// otherwise it has answered (401, with an NTLM challenge when that is the next step).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) bool {
	schemes := s.schemes()
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case strings.EqualFold(scheme, "Basic") && schemes&AuthBasic != 0:
		if s.basicOK(r) {
			return true
		}
		s.logf("wsman: %s: Basic authentication failed (401)", r.RemoteAddr)
	case (strings.EqualFold(scheme, "Negotiate") || strings.EqualFold(scheme, "NTLM")) && schemes&AuthNegotiate != 0:
		return s.negotiate(w, r, scheme, strings.TrimSpace(token))
	case scheme == "" && schemes&AuthNegotiate != 0 && s.connAuthed(r.RemoteAddr):
		// NTLM authenticates the connection, not each request.
		return true
	case scheme == "":
		// Clients probe without credentials first; no failure to log.
	default:
		s.logf("wsman: %s: authentication scheme %q is not enabled (401)", r.RemoteAddr, scheme)
	}
	s.unauthorized(w)
	return false
}

// basicOK checks HTTP Basic credentials in constant time (both comparisons always run).
func (s *Server) basicOK(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || s.User == "" {
		return false
	}
	userOK := subtle.ConstantTimeCompare([]byte(strings.ToLower(user)), []byte(strings.ToLower(s.User)))
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(s.Password))
	return userOK&passOK == 1
}

// negotiate runs one step of the NTLM handshake on the request's connection.
func (s *Server) negotiate(w http.ResponseWriter, r *http.Request, scheme, token string) bool {
	tok, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		s.logf("wsman: %s: %s token is not base64 (401)", r.RemoteAddr, scheme)
		s.unauthorized(w)
		return false
	}
	switch ntlmMessageType(tok) {
	case 1:
		msg, c, err := ntlmChallenge(tok, s.netbiosName(), time.Now())
		if err != nil {
			s.logf("wsman: %s: NTLM negotiate refused: %v (401)", r.RemoteAddr, err)
			s.unauthorized(w)
			return false
		}
		s.setConn(r.RemoteAddr, &c)
		w.Header()["WWW-Authenticate"] = []string{scheme + " " + base64.StdEncoding.EncodeToString(msg)}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusUnauthorized)
		return false
	case 3:
		c := s.takeChallenge(r.RemoteAddr)
		if c == nil {
			s.logf("wsman: %s: NTLM authenticate without a challenge on this connection (401)", r.RemoteAddr)
			s.unauthorized(w)
			return false
		}
		user, err := ntlmVerify(tok, *c, s.User, s.Password)
		if err != nil {
			s.logf("wsman: %s: NTLM authentication of %q failed: %v (401)", r.RemoteAddr, user, err)
			s.unauthorized(w)
			return false
		}
		s.setConn(r.RemoteAddr, &ntlmConn{authed: true})
		return true
	default:
		s.logf("wsman: %s: %s token is not NTLM (SPNEGO and Kerberos are not simulated) (401)", r.RemoteAddr, scheme)
		s.unauthorized(w)
		return false
	}
}

// unauthorized is Windows' answer to missing or wrong credentials: 401 offering the enabled
// schemes, no body (so clients report "invalid content type" as they do against Windows).
func (s *Server) unauthorized(w http.ResponseWriter) {
	var offer []string
	if s.schemes()&AuthNegotiate != 0 {
		offer = append(offer, "Negotiate")
	}
	if s.schemes()&AuthBasic != 0 {
		offer = append(offer, `Basic realm="WSMAN"`)
	}
	w.Header()["WWW-Authenticate"] = offer
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusUnauthorized)
}

// netbiosName is the computer name NTLM challenges carry: upper case, at most 15 characters.
func (s *Server) netbiosName() string {
	name := strings.ToUpper(s.ComputerName)
	if name == "" {
		name = "WINRM-HOST"
	}
	if len(name) > 15 {
		name = name[:15]
	}
	return name
}

func (s *Server) setConn(addr string, c *ntlmConn) {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if s.conns == nil {
		s.conns = make(map[string]*ntlmConn)
	}
	if _, ok := s.conns[addr]; !ok && len(s.conns) >= maxNTLMConns {
		for k := range s.conns {
			delete(s.conns, k)
			break
		}
	}
	s.conns[addr] = c
}

// takeChallenge returns the connection's unanswered challenge and forgets it: each is used once.
func (s *Server) takeChallenge(addr string) *ntlmConn {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	c := s.conns[addr]
	if c == nil || !c.pending {
		return nil
	}
	delete(s.conns, addr)
	return c
}

func (s *Server) connAuthed(addr string) bool {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	c := s.conns[addr]
	return c != nil && c.authed
}

// connState forgets a connection's NTLM state when it closes.
func (s *Server) connState(c net.Conn, st http.ConnState) {
	if st != http.StateClosed && st != http.StateHijacked {
		return
	}
	s.authMu.Lock()
	delete(s.conns, c.RemoteAddr().String())
	s.authMu.Unlock()
}
