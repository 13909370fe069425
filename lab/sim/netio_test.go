package sim

import (
	"strings"
	"testing"

	"github.com/wfplab/wfplab/lab/contract"
)

// The simulator's own table covers every release it can be, and a netio.sys it does not
// know stops the boot instead of being guessed patched or unpatched.
func TestNetioTableOwnsTheTruth(t *testing.T) {
	for _, o := range contract.Catalog() {
		stock, err := lookupNetio(o.NetioStock)
		if err != nil || !stock.leaks || stock.fixed != o.NetioFixed {
			t.Errorf("%s: stock netio %s -> %+v, %v; want leaking, fixed by %s", o.Name, o.NetioStock, stock, err, o.NetioFixed)
		}
		if fixed, err := lookupNetio(o.NetioFixed); err != nil || fixed.leaks {
			t.Errorf("%s: fixed netio %s -> %+v, %v; want not leaking", o.Name, o.NetioFixed, fixed, err)
		}
	}
	o, _ := contract.LookupOS("win7-x64")
	o.NetioStock = "6.1.7600.99999"
	g, err := NewMachine(MachineSpec{Name: "odd", OS: o}, testConfig())
	if err == nil {
		err = g.Start(netipZero)
		defer g.Close(t.Context())
	}
	if err == nil || !strings.Contains(err.Error(), "6.1.7600.99999") {
		t.Fatalf("a guest with an unknown netio.sys booted or gave %v", err)
	}
}
