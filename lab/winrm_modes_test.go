package lab_test

// The WinRM modes real guests need (docs/winrm.md): NTLM as well as Basic, HTTPS with
// certificate checks, WinRM 1.1 as well as 2.0, each against a simulated guest through
// masterzen/winrm over loopback.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/contract"
	"github.com/wfplab/wfplab/lab/sim"
)

func runCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSimNTLM: a guest with Basic off (as Windows ships) is driven over NTLM; a wrong
// password is refused, and so is Basic.
func TestSimNTLM(t *testing.T) {
	t.Parallel()
	s := startSim(t, "win7-x64", func(c *sim.Config) { c.WinRMAuth = contract.AuthNTLM })
	if s.target.Endpoint.Auth != contract.AuthNTLM {
		t.Fatalf("the simulated guest's endpoint says auth %q, want ntlm", s.target.Endpoint.Auth)
	}
	p, err := s.guest.Preflight(runCtx(t))
	if err != nil || p.Version != "6.1" {
		t.Fatalf("preflight over NTLM: %+v, %v", p, err)
	}

	const wrong = "Not-The-Sim-Password-42"
	bad := s.target
	bad.Creds.Password = wrong
	var log logRecorder
	_, err = dial(t, bad, lab.Options{CommandTimeout: 20 * time.Second, Logf: log.logf}).Run(runCtx(t), "ver")
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "NTLM") ||
		!strings.Contains(err.Error(), "Negotiate") {
		t.Fatalf("wrong password over NTLM: %v; want a 401 that names NTLM and the Negotiate setting", err)
	}
	for _, secret := range []string{wrong, simPassword} {
		if strings.Contains(err.Error(), secret) || strings.Contains(log.text(), secret) {
			t.Fatalf("password in error or log: %v\n%s", err, log.text())
		}
	}

	basic := s.target
	basic.Endpoint.Auth = contract.AuthBasic
	_, err = dial(t, basic, lab.Options{CommandTimeout: 20 * time.Second}).Run(runCtx(t), "ver")
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "auth: ntlm") {
		t.Fatalf("Basic against a guest with Basic off: %v; want a 401 that suggests auth: ntlm", err)
	}
}

// TestSimNTLMNeverFallsBackToBasic: asked for NTLM, the lab does not send the password as
// Basic to a guest that offers only Basic (go-ntlmssp alone would).
func TestSimNTLMNeverFallsBackToBasic(t *testing.T) {
	t.Parallel()
	s := startSim(t, "win7-x86", func(c *sim.Config) { c.WinRMAuth = contract.AuthBasic })
	if _, err := s.guest.Run(runCtx(t), "ver"); err != nil {
		t.Fatalf("Basic against a Basic guest: %v", err)
	}
	target := s.target
	target.Endpoint.Auth = contract.AuthNTLM
	_, err := dial(t, target, lab.Options{CommandTimeout: 20 * time.Second}).Run(runCtx(t), "ver")
	if err == nil || !strings.Contains(err.Error(), "offers only Basic") || !strings.Contains(err.Error(), "auth: basic") {
		t.Fatalf("NTLM against a Basic-only guest: %v; want a refusal that says what to set", err)
	}
}

func TestDialRefusesUnknownAuth(t *testing.T) {
	t.Parallel()
	o, _ := contract.LookupOS("win7-x64")
	_, err := lab.Dial(contract.Target{Name: "g", OS: o, Endpoint: contract.Endpoint{Host: "127.0.0.1", Port: 5985, Auth: "kerberos"},
		Creds: contract.Credentials{User: "u"}}, lab.Options{})
	if err == nil || !strings.Contains(err.Error(), `auth "kerberos"`) || !strings.Contains(err.Error(), "basic, ntlm") {
		t.Fatalf("Dial with auth kerberos: %v", err)
	}
}

// otherCA is a CA certificate that signed nothing the guests use.
func otherCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "some other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestSimHTTPS: certificate checks are on unless insecure is asked for. With the guest's CA
// the session works; without it, or with another CA, it fails saying what to give or set;
// insecure skips the check.
func TestSimHTTPS(t *testing.T) {
	t.Parallel()
	s := startSim(t, "win7-x64", func(c *sim.Config) { c.HTTPS = true; c.WinRMAuth = contract.AuthNTLM })
	ep := s.target.Endpoint
	if !ep.HTTPS || len(ep.CACert) == 0 || ep.Insecure || !strings.HasPrefix(ep.String(), "https://") {
		t.Fatalf("the HTTPS guest's endpoint %s: https %v, CA %d bytes, insecure %v", ep, ep.HTTPS, len(ep.CACert), ep.Insecure)
	}
	if out, err := s.guest.Run(runCtx(t), "ver"); err != nil || !strings.Contains(out.Stdout, "6.1") {
		t.Fatalf("HTTPS with the guest's CA: %+v, %v", out, err)
	}
	for name, ca := range map[string][]byte{"no CA": nil, "another CA": otherCA(t)} {
		target := s.target
		target.Endpoint.CACert = ca
		_, err := dial(t, target, lab.Options{CommandTimeout: 20 * time.Second}).Run(runCtx(t), "ver")
		if err == nil || !strings.Contains(err.Error(), "certificate is not trusted") ||
			!strings.Contains(err.Error(), "ca_file") || !strings.Contains(err.Error(), "insecure: true") {
			t.Errorf("%s: %v; want a refusal that says to give ca_file or set insecure", name, err)
		}
	}
	insecure := s.target
	insecure.Endpoint.CACert, insecure.Endpoint.Insecure = nil, true
	if _, err := dial(t, insecure, lab.Options{CommandTimeout: 20 * time.Second}).Run(runCtx(t), "ver"); err != nil {
		t.Errorf("insecure: %v", err)
	}
	// https: true against a plain-HTTP listener says so.
	plain := startSim(t, "win7-x86", nil)
	wrong := plain.target
	wrong.Endpoint.HTTPS = true
	_, err := dial(t, wrong, lab.Options{CommandTimeout: 20 * time.Second}).Run(runCtx(t), "ver")
	if err == nil || !strings.Contains(err.Error(), "answers plain HTTP") {
		t.Errorf("https against HTTP: %v", err)
	}
}

var shellIDRE = regexp.MustCompile(`shell (\S+) created`)

// TestSimWinRM11: Vista and Server 2008 guests answer as WinRM 1.1 (uuid: shell ids, and
// over HTTPS TLS 1.0 only); the lab drives them as it drives WinRM 2.0 guests.
func TestSimWinRM11(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		os      string
		winrm11 bool
	}{{"vista-sp2-x64", true}, {"2008-sp2-x64", true}, {"win7-x64", false}} {
		for _, https := range []bool{false, true} {
			var simLog logRecorder
			s := startSim(t, tc.os, func(c *sim.Config) { c.HTTPS, c.Logf = https, simLog.logf })
			if got := s.prov.Machine(s.target.Name).WinRM11(); got != tc.winrm11 {
				t.Fatalf("%s: WinRM 1.1 mode %v, want %v", tc.os, got, tc.winrm11)
			}
			p, err := s.guest.Preflight(runCtx(t))
			if err != nil || p.Version != s.target.OS.Version {
				t.Fatalf("%s https=%v: preflight %+v, %v", tc.os, https, p, err)
			}
			ids := shellIDRE.FindAllStringSubmatch(simLog.text(), -1)
			if len(ids) == 0 {
				t.Fatalf("%s: the guest logged no shell", tc.os)
			}
			for _, id := range ids {
				if strings.HasPrefix(id[1], "uuid:") != tc.winrm11 {
					t.Errorf("%s: shell id %q; WinRM 1.1 ids carry uuid:, 2.0 ids do not", tc.os, id[1])
				}
			}
			if !https {
				continue
			}
			// A client that insists on TLS 1.2 (Go's default) cannot reach a 1.1 guest.
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(s.target.Endpoint.CACert)
			c, err := tls.Dial("tcp", net.JoinHostPort(s.target.Endpoint.Host, fmt.Sprint(s.target.Endpoint.Port)), &tls.Config{RootCAs: pool})
			if err == nil {
				c.Close()
			}
			if (err != nil) != tc.winrm11 {
				t.Errorf("%s: a TLS 1.2 client got %v; a WinRM 1.1 guest speaks TLS 1.0 only", tc.os, err)
			}
		}
	}
}
