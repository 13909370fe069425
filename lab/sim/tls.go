package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"time"
)

// guestTLS is a guest's HTTPS listener material: a CA of its own and a server certificate
// it signed for the guest's address, as a lab that runs its own CA gives its guests.
type guestTLS struct {
	caPEM []byte
	cert  tls.Certificate
}

// newGuestTLS makes a CA and a certificate for host (and "localhost"), valid for a year.
// ECDSA P-256 keeps it fast; real WinRM listeners mostly use RSA, which the lab's client
// accepts alike.
func newGuestTLS(name string, host netip.Addr) (*guestTLS, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wfplab simulated CA (" + name + ")"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: host.String()},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{host.AsSlice()},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	return &guestTLS{
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		cert:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
	}, nil
}

// config is the listener's TLS configuration. WinRM 1.1 guests (Vista, Server 2008) get
// TLS 1.0 only, as their SChannel speaks no later version (docs/winrm.md, unverified).
func (t *guestTLS) config(winrm11 bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{t.cert}, MinVersion: tls.VersionTLS12}
	if winrm11 {
		c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
	}
	return c
}
