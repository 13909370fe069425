package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/contract"
)

// A lab guest nobody answers for: every call fails, and a failed StartSampler hands back
// a nil Sampler, not a nil *lab.Sampler wrapped in the interface.
func TestLabGuestFailuresAreClean(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now: connections are refused at once
	osEntry, err := contract.LookupOS("win7-x64")
	if err != nil {
		t.Fatal(err)
	}
	g, err := lab.Dial(contract.Target{Name: "gone", OS: osEntry, Endpoint: contract.Endpoint{Host: "127.0.0.1", Port: port},
		Creds: contract.Credentials{User: "vagrant", Password: "vagrant"}},
		lab.Options{OperationTimeout: 2 * time.Second, CommandTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	guest := LabGuest{G: g}
	if guest.Name() != "gone" {
		t.Errorf("name %q", guest.Name())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := guest.StartSampler(ctx, 100*time.Millisecond)
	if err == nil || s != nil {
		t.Fatalf("StartSampler on a dead endpoint: sampler %#v, err %v; want nil and an error", s, err)
	}
	if _, err := guest.Prepare(ctx); err == nil {
		t.Error("Prepare on a dead endpoint must fail")
	}
}
