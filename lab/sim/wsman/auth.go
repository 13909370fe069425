package wsman

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// authorized checks HTTP Basic credentials in constant time (both comparisons always run).
// Any other scheme, Negotiate included, is refused: this server speaks Basic only.
func (s *Server) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || s.User == "" {
		return false
	}
	userOK := subtle.ConstantTimeCompare([]byte(strings.ToLower(user)), []byte(strings.ToLower(s.User)))
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(s.Password))
	return userOK&passOK == 1
}
