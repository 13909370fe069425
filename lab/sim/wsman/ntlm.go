package wsman

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"

	//lint:ignore SA1019 NTLM's NT hash is MD4 by definition ([MS-NLMP] 3.3.1): compatibility, not security
	"golang.org/x/crypto/md4"
)

// NTLM over HTTP as Windows' WinRM service speaks it under "Authorization: Negotiate" (or
// "NTLM"), following [MS-NLMP]: the client sends a NEGOTIATE_MESSAGE, the server answers 401
// with a CHALLENGE_MESSAGE, the client sends an AUTHENTICATE_MESSAGE holding an NTLMv2
// response, and the connection stays authenticated for the requests that follow on it.
// Only NTLMv2 is accepted, only Unicode, and no message sealing (the guest needs
// AllowUnencrypted, as with Basic over HTTP); SPNEGO-wrapped and Kerberos tokens are refused.

// Negotiate flags ([MS-NLMP] 2.2.2.5).
const (
	ntlmUnicode        = 1 << 0
	ntlmRequestTarget  = 1 << 2
	ntlmSign           = 1 << 4
	ntlmSeal           = 1 << 5
	ntlmNTLM           = 1 << 9
	ntlmAlwaysSign     = 1 << 15
	ntlmTargetServer   = 1 << 17
	ntlmExtendedSecure = 1 << 19
	ntlmTargetInfo     = 1 << 23
	ntlm128            = 1 << 29
	ntlmKeyExch        = 1 << 30
	ntlm56             = 1 << 31
)

// ntlmEchoed are the client's requests a server grants when asked ([MS-NLMP] 3.2.5.1.1);
// key exchange only when asked, as go-ntlmssp refuses it.
const ntlmEchoed = ntlmUnicode | ntlmRequestTarget | ntlmSign | ntlmSeal | ntlmExtendedSecure | ntlm128 | ntlmKeyExch | ntlm56

// AV pair ids of the CHALLENGE_MESSAGE's TargetInfo ([MS-NLMP] 2.2.2.1).
const (
	avEOL             = 0
	avNbComputerName  = 1
	avNbDomainName    = 2
	avDNSComputerName = 3
	avDNSDomainName   = 4
	avTimestamp       = 7
)

var ntlmSignature = []byte("NTLMSSP\x00")

// ntlmAuthFixedLen is the fixed part of an AUTHENTICATE_MESSAGE up to NegotiateFlags.
const ntlmAuthFixedLen = 64

// ntlmConn is one connection's NTLM state: a challenge sent and not yet answered, or the
// account the connection authenticated as.
type ntlmConn struct {
	challenge [8]byte
	target    string // the NetBIOS name the challenge named
	pending   bool
	authed    bool
}

// ntlmMessageType reads a token's NTLMSSP signature and message type (0 when it is none).
func ntlmMessageType(tok []byte) uint32 {
	if len(tok) < 12 || subtle.ConstantTimeCompare(tok[:8], ntlmSignature) != 1 {
		return 0
	}
	return binary.LittleEndian.Uint32(tok[8:12])
}

// ntlmChallenge builds a CHALLENGE_MESSAGE answering a NEGOTIATE_MESSAGE, for the local
// computer name: a local account's domain is the computer itself.
func ntlmChallenge(negotiate []byte, name string, now time.Time) (msg []byte, c ntlmConn, err error) {
	if len(negotiate) < 16 {
		return nil, c, errors.New("NEGOTIATE_MESSAGE too short")
	}
	asked := binary.LittleEndian.Uint32(negotiate[12:16])
	if asked&ntlmUnicode == 0 {
		return nil, c, errors.New("the client offers only OEM strings; this server speaks Unicode NTLM only")
	}
	if _, err := rand.Read(c.challenge[:]); err != nil {
		return nil, c, fmt.Errorf("no random challenge: %w", err)
	}
	c.target, c.pending = name, true
	flags := asked&ntlmEchoed | ntlmNTLM | ntlmAlwaysSign | ntlmTargetServer | ntlmTargetInfo

	target := utf16le(name)
	var info []byte
	av := func(id uint16, v []byte) {
		info = binary.LittleEndian.AppendUint16(info, id)
		info = binary.LittleEndian.AppendUint16(info, uint16(len(v)))
		info = append(info, v...)
	}
	av(avNbDomainName, target)
	av(avNbComputerName, target)
	av(avDNSDomainName, utf16le(strings.ToLower(name)))
	av(avDNSComputerName, utf16le(strings.ToLower(name)))
	av(avTimestamp, binary.LittleEndian.AppendUint64(nil, fileTime(now)))
	av(avEOL, nil)

	const fixed = 56 // through the (zero) Version field
	msg = make([]byte, fixed, fixed+len(target)+len(info))
	copy(msg, ntlmSignature)
	binary.LittleEndian.PutUint32(msg[8:], 2)
	putVarField(msg[12:], len(target), fixed)
	binary.LittleEndian.PutUint32(msg[20:], flags)
	copy(msg[24:32], c.challenge[:])
	putVarField(msg[40:], len(info), fixed+len(target))
	msg = append(append(msg, target...), info...)
	return msg, c, nil
}

// ntlmVerify checks an AUTHENTICATE_MESSAGE against the challenge c sent and the account's
// password: the NTLMv2 response must be HMAC-MD5 keyed with NTOWFv2 over the server
// challenge and the client's blob ([MS-NLMP] 3.3.2). It returns the user name the client
// gave; a mismatch says why without the password.
func ntlmVerify(msg []byte, c ntlmConn, wantUser, password string) (string, error) {
	if len(msg) < ntlmAuthFixedLen {
		return "", errors.New("AUTHENTICATE_MESSAGE too short")
	}
	flags := binary.LittleEndian.Uint32(msg[60:64])
	if flags&ntlmUnicode == 0 {
		return "", errors.New("AUTHENTICATE_MESSAGE is not Unicode")
	}
	nt, err1 := varField(msg, 20)
	domainRaw, err2 := varField(msg, 28)
	userRaw, err3 := varField(msg, 36)
	if err := errors.Join(err1, err2, err3); err != nil {
		return "", err
	}
	domain, err1 := fromUTF16le(domainRaw)
	user, err2 := fromUTF16le(userRaw)
	if err := errors.Join(err1, err2); err != nil {
		return "", err
	}
	switch {
	case user == "":
		return "", errors.New("anonymous NTLM is not allowed")
	case len(nt) == 24:
		return user, errors.New("an NTLMv1 response; this server accepts NTLMv2 only")
	case len(nt) < 16+28 || nt[16] != 1 || nt[17] != 1:
		return user, errors.New("the NTLMv2 response is malformed")
	case !strings.EqualFold(user, wantUser):
		return user, errors.New("unknown user")
	case domain != "" && domain != "." && !strings.EqualFold(domain, c.target):
		return user, fmt.Errorf("domain %q is not this computer's (%s): only local accounts exist here", domain, c.target)
	}
	ntHash := md4.New()
	ntHash.Write(utf16le(password))
	key := hmacMD5(ntHash.Sum(nil), utf16le(strings.ToUpper(user)+domain))
	proof := hmacMD5(key, c.challenge[:], nt[16:])
	if !hmac.Equal(proof, nt[:16]) {
		return user, errors.New("the NTLMv2 response does not match the password")
	}
	return user, nil
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	m := hmac.New(md5.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

// varField reads the payload an 8-byte (Len, MaxLen, Offset) field at off points to.
func varField(msg []byte, off int) ([]byte, error) {
	n := uint64(binary.LittleEndian.Uint16(msg[off:]))
	at := uint64(binary.LittleEndian.Uint32(msg[off+4:]))
	if at+n > uint64(len(msg)) {
		return nil, fmt.Errorf("a field at offset %d runs past the message's end", off)
	}
	return msg[at : at+n], nil
}

func putVarField(b []byte, n, offset int) {
	binary.LittleEndian.PutUint16(b, uint16(n))
	binary.LittleEndian.PutUint16(b[2:], uint16(n))
	binary.LittleEndian.PutUint32(b[4:], uint32(offset))
}

func utf16le(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return b
}

func fromUTF16le(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", errors.New("a UTF-16 string of odd length")
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u)), nil
}

// fileTime is t as a Windows FILETIME: 100 ns ticks since 1601.
func fileTime(t time.Time) uint64 {
	return uint64(t.UnixNano()/100) + 116444736000000000
}
