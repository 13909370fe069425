package kernel

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func TestAppendSegments(t *testing.T) {
	for _, tc := range []struct {
		name   string
		start  []sizeRun
		n, gso int
		want   []sizeRun
	}{
		{"one datagram", nil, 64, 0, []sizeRun{{64, 1}}},
		{"empty datagram", nil, 0, 0, []sizeRun{{0, 1}}},
		{"one segment", nil, 64, 64, []sizeRun{{64, 1}}},
		{"shorter than gso", nil, 40, 64, []sizeRun{{40, 1}}},
		{"whole segments", nil, 64 * 64, 64, []sizeRun{{64, 64}}},
		{"short tail", nil, 3*4000 + 1000, 4000, []sizeRun{{4000, 3}, {1000, 1}}},
		{"tail of one byte", nil, 2*1472 + 1, 1472, []sizeRun{{1472, 2}, {1, 1}}},
		{"merges with the last run", []sizeRun{{64, 5}}, 64 * 3, 64, []sizeRun{{64, 8}}},
		{"keeps a different run", []sizeRun{{100, 1}}, 64 * 2, 64, []sizeRun{{100, 1}, {64, 2}}},
	} {
		got := appendSegments(append([]sizeRun(nil), tc.start...), tc.n, tc.gso)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: appendSegments(%v, %d, %d) = %v, want %v", tc.name, tc.start, tc.n, tc.gso, got, tc.want)
		}
	}
}

// IndicateN(l, n, count) must leave every counter, total and pool figure exactly where count
// calls of Indicate(l, n) leave them.
func TestIndicateNIsCountIndications(t *testing.T) {
	local := netip.AddrPortFrom(loopback, 7000)
	drivers := map[string]*DriverConfig{
		"no driver":     nil,
		"filtering":     {StreamPort: 7000, ControlPort: 7000, ForwardPrefix: netip.MustParsePrefix("127.0.0.0/8")},
		"not filtering": {StreamPort: 1, ControlPort: 2, ForwardPrefix: netip.MustParsePrefix("10.0.0.0/8")},
	}
	for _, patched := range []bool{false, true} {
		for name, drv := range drivers {
			one, many := quietKernel(t, "x86", patched), quietKernel(t, "x86", patched)
			if drv != nil {
				one.StartDriver(*drv)
				many.StartDriver(*drv)
			}
			for _, l := range Layers {
				for _, n := range []int{1, 2, 3, 5, 17, 45} {
					for _, count := range []int{1, 7, 64} {
						var b1 bool
						for range count {
							b1 = one.Indicate(l, n, local)
						}
						if bN := many.IndicateN(l, n, count, local); bN != b1 {
							t.Fatalf("patched=%v %s layer %v n=%d count=%d: IndicateN blocked=%v, Indicate %v", patched, name, l, n, count, bN, b1)
						}
					}
				}
			}
			c1, ok1 := one.Counters()
			cN, okN := many.Counters()
			if c1 != cN || ok1 != okN {
				t.Errorf("patched=%v %s: counters %+v, want %+v", patched, name, cN, c1)
			}
			if one.totals() != many.totals() {
				t.Errorf("patched=%v %s: totals %+v, want %+v", patched, name, many.totals(), one.totals())
			}
			if p1, pN := one.Pool(time.Second), many.Pool(time.Second); !reflect.DeepEqual(p1, pN) {
				t.Errorf("patched=%v %s: pool %d bytes, want %d", patched, name, pN.Bytes, p1.Bytes)
			}
		}
	}
	k := quietKernel(t, "x64", false)
	for _, bad := range [][2]int{{0, 5}, {3, 0}, {-1, 5}, {3, -2}} {
		if k.IndicateN(LayerForward, bad[0], bad[1], local) {
			t.Errorf("IndicateN(n=%d, count=%d) blocked something", bad[0], bad[1])
		}
	}
	if k.IndicateN(numLayers, 1, 1, local) {
		t.Error("IndicateN on an unknown layer blocked something")
	}
	if tot := k.totals(); tot != ([numLayers]pathTotals{}) {
		t.Errorf("bad input moved the totals: %+v", tot)
	}
}
