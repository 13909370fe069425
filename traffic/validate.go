package traffic

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"time"
)

// Defaults and limits of a Spec.
const (
	DefaultStreamPayload   = 1460
	DefaultFragmentPayload = 4000
	DefaultSinglePayload   = 64
	DefaultBurstSegments   = 8
	DefaultConns           = 4
	DefaultBatch           = 64

	maxUDPPayload4 = 65507 // 65535 - IPv4 header - UDP header
	maxUDPPayload6 = 65527 // 65535 - UDP header (jumbograms aside)
	maxSegment     = 65535
	maxBurstBytes  = 16 << 20
	maxConns       = 1024
	maxBatch       = 1024
)

// DefaultPayload is a profile's PayloadBytes when the Spec leaves it 0.
func DefaultPayload(p Profile) int {
	switch p {
	case StreamBurst:
		return DefaultStreamPayload
	case FragmentForward:
		return DefaultFragmentPayload
	case SingleNBL:
		return DefaultSinglePayload
	}
	return 0
}

// part is one basic profile of a run, with its share of the rate and of MaxPackets.
type part struct {
	profile    Profile
	rate       float64 // packets per second, 0 = unpaced
	maxPackets uint64  // 0 = no packet bound
	payload    int
	burst      int // stream-burst segments per write
	conns      int
}

// Validate checks a Spec; errors name the field and say what to set.
func (s Spec) Validate() error {
	_, err := s.parts()
	return err
}

// parts validates s, fills defaults and splits a Mix into its basic parts.
func (s Spec) parts() ([]part, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("traffic: "+format, a...)) }
	s.checkFields(bad)
	weights := s.weights(bad)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	parts := s.split(weights, bad)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return parts, nil
}

// checkFields checks each of the Spec's own fields.
func (s Spec) checkFields(bad func(string, ...any)) {
	if !isBasic(s.Profile) && s.Profile != Mix {
		bad("Spec.Profile %q is unknown: use one of %v or %q", s.Profile, Profiles, Mix)
	}
	if math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) || s.Rate < 0 {
		bad("Spec.Rate = %v: must be a finite number of packets per second, ≥ 0 (0 = as fast as possible)", s.Rate)
	}
	if math.IsNaN(s.BitRate) || math.IsInf(s.BitRate, 0) || s.BitRate < 0 {
		bad("Spec.BitRate = %v: must be a finite number of bits per second, ≥ 0", s.BitRate)
	}
	if s.Rate > 0 && s.BitRate > 0 {
		bad("Spec.Rate (%v packets/s) and Spec.BitRate (%v bits/s) are both set: set only one", s.Rate, s.BitRate)
	}
	if s.Duration < 0 {
		bad("Spec.Duration = %v is negative", s.Duration)
	}
	if s.Duration == 0 && s.MaxPackets == 0 {
		bad("Spec.Duration and Spec.MaxPackets are both 0: set at least one so the run ends")
	}
	if s.BurstSegments < 0 || s.BurstSegments > 1024 {
		bad("Spec.BurstSegments = %d: must be 1..1024 (0 = default %d)", s.BurstSegments, DefaultBurstSegments)
	}
	if s.Conns < 0 || s.Conns > maxConns {
		bad("Spec.Conns = %d: must be 1..%d (0 = default %d)", s.Conns, maxConns, DefaultConns)
	}
	if s.Batch < 0 || s.Batch > maxBatch {
		bad("Spec.Batch = %d: must be 1..%d (0 = default %d)", s.Batch, maxBatch, DefaultBatch)
	}
	switch s.Send {
	case SendAuto, SendGSO, SendBatch, SendSingle:
	default:
		bad("Spec.Send %q is unknown: use %q, %q, %q or leave it empty (auto)", s.Send, SendGSO, SendBatch, SendSingle)
	}
	if s.PayloadBytes < 0 {
		bad("Spec.PayloadBytes = %d is negative", s.PayloadBytes)
	}
}

// weights are the profiles a run sends and their shares: one profile, or a mix's.
func (s Spec) weights(bad func(string, ...any)) map[Profile]float64 {
	var weights map[Profile]float64
	switch {
	case s.Profile == Mix:
		if len(s.Weights) == 0 {
			bad("Spec.Weights is empty: a %q run needs a weight > 0 for at least one of %v", Mix, Profiles)
		}
		if s.PayloadBytes != 0 {
			bad("Spec.PayloadBytes = %d with Profile %q: a mix uses each profile's default size; leave it 0", s.PayloadBytes, Mix)
		}
		weights = map[Profile]float64{}
		for p, w := range s.Weights {
			switch {
			case !isBasic(p):
				bad("Spec.Weights has profile %q: use only %v", p, Profiles)
			case math.IsNaN(w) || math.IsInf(w, 0) || w <= 0:
				bad("Spec.Weights[%q] = %v: weights must be finite and > 0 (leave a profile out instead)", p, w)
			default:
				weights[p] = w
			}
		}
	case len(s.Weights) > 0:
		bad("Spec.Weights is set but Spec.Profile is %q: weights need Profile %q", s.Profile, Mix)
	default:
		weights = map[Profile]float64{s.Profile: 1}
	}
	return weights
}

// split divides the rate and the packet budget among the profiles, in a stable order,
// and checks each profile's payload.
func (s Spec) split(weights map[Profile]float64, bad func(string, ...any)) []part {
	burst := orDefault(s.BurstSegments, DefaultBurstSegments)
	conns := orDefault(s.Conns, DefaultConns)
	var total float64
	order := make([]Profile, 0, len(weights))
	for p, w := range weights {
		total += w
		order = append(order, p)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })

	parts := make([]part, 0, len(order))
	var packetsLeft = s.MaxPackets
	for i, p := range order {
		share := weights[p] / total
		pt := part{profile: p, payload: orDefault(s.PayloadBytes, DefaultPayload(p)), burst: burst, conns: conns}
		switch {
		case s.Rate > 0:
			pt.rate = s.Rate * share
		case s.BitRate > 0:
			pt.rate = PacketsPerSecond(s.BitRate*share, pt.payload)
		}
		if s.MaxPackets > 0 {
			if i == len(order)-1 {
				pt.maxPackets = packetsLeft
			} else {
				pt.maxPackets = uint64(math.Floor(float64(s.MaxPackets) * share))
				packetsLeft -= pt.maxPackets
			}
			if pt.maxPackets == 0 {
				bad("Spec.MaxPackets = %d leaves %s no packet at weight %v: raise MaxPackets", s.MaxPackets, p, weights[p])
			}
		}
		if pt.payload < HeaderLen {
			bad("Spec.PayloadBytes = %d (%s) is below the %d-byte payload header: use at least %d", pt.payload, p, HeaderLen, HeaderLen)
		}
		if p == StreamBurst {
			if pt.payload > maxSegment {
				bad("Spec.PayloadBytes = %d is above %d for %s segments", pt.payload, maxSegment, p)
			} else if pt.payload*pt.burst > maxBurstBytes {
				bad("Spec.PayloadBytes × Spec.BurstSegments = %d bytes per write is above %d", pt.payload*pt.burst, maxBurstBytes)
			}
		} else if pt.payload > maxUDPPayload6 {
			bad("Spec.PayloadBytes = %d is above the largest UDP payload (%d over IPv4, %d over IPv6)", pt.payload, maxUDPPayload4, maxUDPPayload6)
		}
		parts = append(parts, pt)
	}
	return parts
}

// destination is where a part's traffic goes, and the Target field that holds it.
func (pt part) destination(to Addrs) (netip.AddrPort, string) {
	switch pt.profile {
	case StreamBurst:
		return to.Stream, "Target.Stream (stream-burst)"
	case FragmentForward:
		return to.Forward, "Target.Forward (fragment-forward)"
	default:
		return to.Control, "Target.Control (single-nbl)"
	}
}

func isBasic(p Profile) bool { return p == StreamBurst || p == FragmentForward || p == SingleNBL }

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// endOf is when a run of Duration d ends; the zero time means no time bound.
func endOf(start time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return start.Add(d)
}
