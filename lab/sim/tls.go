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
	"net/netip"
	"time"
)

// guestTLS is a guest's HTTPS listener material: the PEM of the CA that signed its
// certificate, and the certificate, as a lab that runs its own CA gives its guests.
type guestTLS struct {
	caPEM []byte
	cert  tls.Certificate
}

// CA is a lab's own certificate authority, which issues guests' WinRM certificates. A lab
// gives its boxes their certificates before any machine exists, so one CA outlives the
// guests it issued for (internal/fakevagrant shares one across a Vagrantfile's machines).
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// NewCA makes a CA valid for a year. ECDSA P-256 keeps it fast; real WinRM listeners mostly
// use RSA, which the lab's client accepts alike.
func NewCA(name string) (*CA, error) {
	now := time.Now()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// PEM is the CA's certificate, what a target's ca_file holds.
func (c *CA) PEM() []byte { return append([]byte(nil), c.pem...) }

// issue makes a server certificate for hosts (the first is its common name) and "localhost".
func (c *CA) issue(hosts []netip.Addr) (*guestTLS, error) {
	now := time.Now()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(2)),
		Subject:      pkix.Name{CommonName: hosts[0].String()},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
	}
	for _, h := range hosts {
		tmpl.IPAddresses = append(tmpl.IPAddresses, h.AsSlice())
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, err
	}
	return &guestTLS{caPEM: c.PEM(), cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}, nil
}

// newGuestTLS makes the certificate for host, the extra addresses and "localhost", issued
// by ca, or by a CA of the guest's own when ca is nil.
func newGuestTLS(name string, ca *CA, host netip.Addr, extra []netip.Addr) (*guestTLS, error) {
	if ca == nil {
		var err error
		if ca, err = NewCA("wfplab simulated CA (" + name + ")"); err != nil {
			return nil, err
		}
	}
	return ca.issue(append([]netip.Addr{host}, extra...))
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
