package qemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wfplab/wfplab/lab/contract"
)

func TestMachineDefaultsAndValidation(t *testing.T) {
	kernel := filepath.Join(t.TempDir(), "vmlinuz")
	os.WriteFile(kernel, []byte("k"), 0o600)
	m := Machine{Name: "w7", OS: "win7-x64", Kernel: kernel, Creds: contract.Credentials{User: "u"}}.withDefaults()
	if m.MemoryMB != 512 || m.CPUs != 1 || m.Accel != AccelAuto || m.GuestPorts != (GuestPorts{5985, 5001, 5002}) ||
		m.NICModel != "virtio-net-pci" || m.DiskInterface != "ide" || m.ProbeTimeout != DefaultKVMProbe {
		t.Errorf("defaults: %+v", m)
	}
	if err := m.validate(); err != nil {
		t.Errorf("valid machine: %v", err)
	}
	bad := Machine{Name: "../x", OS: "win95", Image: "/no/such.qcow2", Initrd: "/i", MemoryMB: 8, CPUs: 100,
		Accel: "xen", DiskInterface: "scsi", NICModel: "e1000,x=1", StateDiskMB: -1}.withDefaults()
	err := bad.validate()
	if err == nil {
		t.Fatal("bad machine passed")
	}
	for _, want := range []string{`name "../x"`, `unknown OS "win95"`, "/no/such.qcow2", "initrd/append given without kernel",
		"memory_mb 8", "cpus 100", `accel "xen"`, `disk interface "scsi"`, "nic model", "state disk -1", "no guest user"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("validation lacks %q: %v", want, err)
		}
	}
}

func TestMemAvailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meminfo")
	os.WriteFile(path, []byte("MemTotal:       32000000 kB\nMemFree:  100 kB\nMemAvailable:   23908388 kB\n"), 0o600)
	if mb, err := memAvailableMB(path); err != nil || mb != 23348 {
		t.Errorf("memAvailableMB = %d, %v; want 23348", mb, err)
	}
	os.WriteFile(path, []byte("MemTotal: 1 kB\n"), 0o600)
	if _, err := memAvailableMB(path); err == nil {
		t.Errorf("no MemAvailable line should fail")
	}
	c := Config{RunDir: "r"}.withDefaults()
	if c.MemoryBudgetMB <= 0 || c.QemuBinary != "qemu-system-x86_64" || c.QemuImg != "qemu-img" || !filepath.IsAbs(c.RunDir) {
		t.Errorf("config defaults %+v", c)
	}
	if _, err := New(Config{}); err == nil {
		t.Errorf("a provider without a run folder")
	}
}

func TestMemoryBudget(t *testing.T) {
	p, err := New(Config{RunDir: t.TempDir(), MemoryBudgetMB: 1200, AccelCacheDir: "off"})
	if err != nil {
		t.Fatal(err)
	}
	m := Machine{MemoryMB: 512}
	if err := p.reserve(m); err != nil {
		t.Fatal(err)
	}
	if err := p.reserve(m); err != nil {
		t.Fatal(err)
	}
	if err := p.reserve(m); err == nil || !strings.Contains(err.Error(), "48 of the 1200 MB") {
		t.Errorf("third VM: %v; want a refusal saying what is left", err)
	}
	p.release(m)
	if err := p.reserve(m); err != nil {
		t.Errorf("after a release: %v", err)
	}
}

func TestAccelCache(t *testing.T) {
	dir := t.TempDir()
	c := accelCache{path: filepath.Join(dir, "sub", accelCacheFile), key: "QEMU 7.2 / kernel 6.1"}
	if v := c.load(); v != "" {
		t.Errorf("empty cache gave %q", v)
	}
	if err := c.store(AccelTCG); err != nil {
		t.Fatal(err)
	}
	other := accelCache{path: c.path, key: "QEMU 8.0 / kernel 6.1"}
	if err := other.store(AccelKVM); err != nil {
		t.Fatal(err)
	}
	if c.load() != AccelTCG || other.load() != AccelKVM {
		t.Errorf("verdicts %q %q; want each key its own", c.load(), other.load())
	}
	os.WriteFile(c.path, []byte("{broken"), 0o600)
	if v := c.load(); v != "" {
		t.Errorf("a damaged cache gave %q", v)
	}
	if err := c.store(AccelKVM); err != nil || c.load() != AccelKVM {
		t.Errorf("a damaged cache is not replaced: %v", err)
	}
	off := newAccelCache("off", "qemu-system-x86_64")
	if off.store(AccelTCG) != nil || off.load() != "" {
		t.Errorf("cache off still caches")
	}
}
