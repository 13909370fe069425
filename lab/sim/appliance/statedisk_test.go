package appliance

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// memDisk is a byte slice as a block device.
type memDisk []byte

func (m memDisk) ReadAt(p []byte, off int64) (int, error)  { return copy(p, m[off:]), nil }
func (m memDisk) WriteAt(p []byte, off int64) (int, error) { return copy(m[off:], p), nil }

func TestStateDiskRoundTrip(t *testing.T) {
	disk := make(memDisk, 1<<20)
	d, err := OpenStateDisk(disk, disk, int64(len(disk)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load(); !errors.Is(err, ErrNoState) {
		t.Fatalf("blank disk: %v", err)
	}
	first := bytes.Repeat([]byte("state one "), 1000)
	second := []byte("state two")
	if err := d.Save(first); err != nil {
		t.Fatal(err)
	}
	if err := d.Save(second); err != nil {
		t.Fatal(err)
	}
	// A fresh open (the next boot) finds the newest.
	d2, _ := OpenStateDisk(disk, disk, int64(len(disk)))
	if got, err := d2.Load(); err != nil || !bytes.Equal(got, second) {
		t.Fatalf("after reopen: %q, %v", got, err)
	}
	// A save torn before its header leaves the previous state: damage the newest payload.
	slot := d2.slot
	disk[int64(slot)*d2.slotSize()+stateHeader+3] ^= 0xff
	d3, _ := OpenStateDisk(disk, disk, int64(len(disk)))
	if got, err := d3.Load(); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("with the newest slot damaged: %d bytes, %v; want the previous state", len(got), err)
	}
	// Saving again goes to the damaged slot, not over the good one.
	if err := d3.Save([]byte("three")); err != nil || d3.slot != slot {
		t.Fatalf("save after damage: slot %d, %v", d3.slot, err)
	}
	d4, _ := OpenStateDisk(disk, disk, int64(len(disk)))
	if got, _ := d4.Load(); string(got) != "three" {
		t.Fatalf("after a third save: %q", got)
	}
	if _, err := OpenStateDisk(disk, disk, 100); err == nil {
		t.Fatal("a 100-byte disk was accepted")
	}
	small := make(memDisk, 64<<10)
	ds, _ := OpenStateDisk(small, small, int64(len(small)))
	big := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32()) // incompressible
	}
	if err := ds.Save(big); err == nil || !strings.Contains(err.Error(), "larger state disk") {
		t.Fatalf("an oversize state: %v", err)
	}
}

func TestCmdlineRoundTrip(t *testing.T) {
	p := Params{Target: "win7-x86", Seed: -4, Noise: false, HangPoolMB: 48, State: "/dev/vdb"}
	got, err := ParseCmdline("BOOT_IMAGE=x "+p.Append()+" other=1", Params{Noise: true})
	if err != nil || got != p {
		t.Fatalf("parsed %+v, %v; want %+v", got, err, p)
	}
	if _, err := ParseCmdline("wfplab.password=secret", Params{}); err == nil {
		t.Fatal("an unknown wfplab parameter was accepted")
	}
	if _, err := ParseCmdline("wfplab.seed=x", Params{}); err == nil {
		t.Fatal("a bad seed was accepted")
	}
}
