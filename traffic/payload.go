package traffic

import "encoding/binary"

// HeaderLen is the size of the header at the start of every datagram and of every
// stream-burst segment: "WFPL", version, profile code, two zero bytes, sequence (big endian).
const HeaderLen = 16

const headerVersion = 1

var magic = [4]byte{'W', 'F', 'P', 'L'}

// Header is what a receiver learns from a payload's first HeaderLen bytes.
type Header struct {
	Profile Profile
	Seq     uint64 // per run, counting datagrams or segments from 0
}

var profileCodes = map[Profile]byte{StreamBurst: 1, FragmentForward: 2, SingleNBL: 3}

// PutHeader writes the header for profile p and sequence seq into b[:HeaderLen].
func PutHeader(b []byte, p Profile, seq uint64) {
	_ = b[HeaderLen-1]
	copy(b, magic[:])
	b[4] = headerVersion
	b[5] = profileCodes[p]
	b[6], b[7] = 0, 0
	binary.BigEndian.PutUint64(b[8:], seq)
}

// ParseHeader reads a header; ok is false when b does not start with one.
func ParseHeader(b []byte) (h Header, ok bool) {
	if len(b) < HeaderLen || [4]byte(b[:4]) != magic || b[4] != headerVersion {
		return Header{}, false
	}
	for p, c := range profileCodes {
		if c == b[5] {
			return Header{Profile: p, Seq: binary.BigEndian.Uint64(b[8:])}, true
		}
	}
	return Header{}, false
}

// fillPayload writes a recognisable filler: a repeating, non-zero pattern that compresses
// poorly and shows up plainly in a packet capture.
func fillPayload(b []byte) {
	for i := range b {
		b[i] = byte('a' + i%26)
	}
}
