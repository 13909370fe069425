package contract

import "testing"

// NetioState compares within a servicing branch (docs/windows.md).
func TestNetioStateTable(t *testing.T) {
	cases := map[string]HotfixState{
		"6.1.7600.16385": Unpatched, // 7 / 2008 R2 RTM (GDR)
		"6.1.7600.16400": Unpatched, // a later GDR build, still below 20000
		"6.1.7600.20610": Unpatched, // LDR before the fix
		"6.1.7600.20611": Patched,   // KB979223
		"6.1.7600.20700": Patched,
		"6.1.7601.17514": Patched, // SP1 includes the fix (unverified)
		"6.0.6001.18000": Unpatched,
		"6.0.6001.22658": Unpatched,
		"6.0.6001.22659": Patched,
		"6.0.6002.18005": Unpatched,
		"6.0.6002.22368": Unpatched,
		"6.0.6002.22369": Patched,
		"6.0.6002.19999": Unpatched, // GDR: never "revision >= N"
		"6.0.6000.16386": Unknown,   // Vista RTM: not in the KB
		"missing":        Unknown,
		"6.1.7600":       Unknown,
		"6.1.x.20611":    Unknown,
		"":               Unknown,
	}
	for v, want := range cases {
		if got := NetioState(v); got != want {
			t.Errorf("NetioState(%q) = %s, want %s", v, got, want)
		}
	}
	for _, o := range Catalog() {
		if NetioState(o.NetioStock) != Unpatched || NetioState(o.NetioFixed) != Patched {
			t.Errorf("%s: stock %s is %s, fixed %s is %s", o.Name, o.NetioStock, NetioState(o.NetioStock), o.NetioFixed, NetioState(o.NetioFixed))
		}
	}
}
