package appliance

import (
	"reflect"
	"strings"
	"testing"
)

// TestLoadOrder holds the order to the one measured to work (virtio before virtio_ring fails
// with "Unknown symbol"), from the dependencies Debian 12's modules declare.
func TestLoadOrder(t *testing.T) {
	deps := map[string][]string{
		"virtio_ring": nil, "virtio": {"virtio_ring"}, "virtio_pci_legacy_dev": nil, "virtio_pci_modern_dev": nil,
		"virtio_pci": {"virtio_pci_modern_dev", "virtio", "virtio_ring", "virtio_pci_legacy_dev"},
		"failover":   nil, "net_failover": {"failover"}, "virtio_net": {"net_failover", "virtio", "virtio_ring"},
		"virtio_blk": {"virtio", "virtio_ring"}, "button": nil, "evdev": nil,
	}
	got, err := loadOrder(Modules, func(n string) ([]string, error) { return deps[n], nil })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"failover", "net_failover", "virtio_ring", "virtio", "virtio_net", "virtio_blk",
		"virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "button", "evdev"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	deps["virtio_ring"] = []string{"virtio_net"}
	if _, err := loadOrder(Modules, func(n string) ([]string, error) { return deps[n], nil }); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("a cycle gave %v", err)
	}
}
