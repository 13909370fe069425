package appliance

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// The state disk is a raw block device (no file system) holding the simulated machine's
// persistent state in two slots, each half of the disk:
//
//	offset 0   magic "WFPLABS1" (8 bytes)
//	       8   sequence number, uint64 little-endian (the newest valid slot wins)
//	      16   payload length, uint64
//	      24   CRC-32C of the payload, uint32
//	      28   CRC-32C of bytes 0..27, uint32
//	    4096   payload: gzip of the state (sim's SaveState)
//
// A save goes to the slot not holding the newest state, so a power cut mid-save leaves the
// previous state readable. A blank disk (zeros) holds no state.

const (
	stateMagic  = "WFPLABS1"
	stateHeader = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrNoState says the disk holds no valid state (blank, or both slots damaged).
var ErrNoState = errors.New("the state disk holds no saved state")

// StateDisk reads and writes states on a device of size bytes.
type StateDisk struct {
	dev  io.ReaderAt
	w    io.WriterAt
	size int64
	seq  uint64 // newest sequence on the disk
	slot int    // slot holding it; -1 for none
}

// OpenStateDisk prepares dev (size bytes; readable, and writable through w) and finds its newest state.
func OpenStateDisk(dev io.ReaderAt, w io.WriterAt, size int64) (*StateDisk, error) {
	if size < 4*stateHeader {
		return nil, fmt.Errorf("state disk: %d bytes is too small; give at least 16 MiB", size)
	}
	d := &StateDisk{dev: dev, w: w, size: size, slot: -1}
	for s := 0; s < 2; s++ {
		if seq, _, err := d.readSlot(s); err == nil && (d.slot < 0 || seq > d.seq) {
			d.seq, d.slot = seq, s
		}
	}
	return d, nil
}

func (d *StateDisk) slotSize() int64 { return d.size / 2 / stateHeader * stateHeader }

func (d *StateDisk) readSlot(s int) (uint64, []byte, error) {
	off := int64(s) * d.slotSize()
	var h [32]byte
	if _, err := d.dev.ReadAt(h[:], off); err != nil {
		return 0, nil, err
	}
	if string(h[:8]) != stateMagic {
		return 0, nil, ErrNoState
	}
	if crc32.Checksum(h[:28], castagnoli) != binary.LittleEndian.Uint32(h[28:]) {
		return 0, nil, fmt.Errorf("state disk slot %d: header checksum mismatch", s)
	}
	seq, n := binary.LittleEndian.Uint64(h[8:]), binary.LittleEndian.Uint64(h[16:])
	if n > uint64(d.slotSize()-stateHeader) {
		return 0, nil, fmt.Errorf("state disk slot %d: length %d exceeds the slot", s, n)
	}
	payload := make([]byte, n)
	if _, err := d.dev.ReadAt(payload, off+stateHeader); err != nil {
		return 0, nil, fmt.Errorf("state disk slot %d: %w", s, err)
	}
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(h[24:]) {
		return 0, nil, fmt.Errorf("state disk slot %d: payload checksum mismatch", s)
	}
	return seq, payload, nil
}

// Load returns the newest saved state, or ErrNoState.
func (d *StateDisk) Load() ([]byte, error) {
	if d.slot < 0 {
		return nil, ErrNoState
	}
	_, payload, err := d.readSlot(d.slot)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("state disk: %w", err)
	}
	return io.ReadAll(zr)
}

// Save writes state to the other slot with the next sequence number, syncing the device
// (when it is an *os.File) before and after the header.
func (d *StateDisk) Save(state []byte) error {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(state)
	zw.Close()
	payload := buf.Bytes()
	if int64(len(payload)) > d.slotSize()-stateHeader {
		return fmt.Errorf("state disk: the state takes %d bytes compressed, a slot holds %d: give the appliance a larger state disk",
			len(payload), d.slotSize()-stateHeader)
	}
	s := 0
	if d.slot == 0 {
		s = 1
	}
	off := int64(s) * d.slotSize()
	// Payload first, header last: a torn write leaves a header that does not match.
	if _, err := d.w.WriteAt(payload, off+stateHeader); err != nil {
		return fmt.Errorf("state disk: writing slot %d: %w", s, err)
	}
	if err := d.sync(); err != nil {
		return err
	}
	var h [32]byte
	copy(h[:], stateMagic)
	binary.LittleEndian.PutUint64(h[8:], d.seq+1)
	binary.LittleEndian.PutUint64(h[16:], uint64(len(payload)))
	binary.LittleEndian.PutUint32(h[24:], crc32.Checksum(payload, castagnoli))
	binary.LittleEndian.PutUint32(h[28:], crc32.Checksum(h[:28], castagnoli))
	if _, err := d.w.WriteAt(h[:], off); err != nil {
		return fmt.Errorf("state disk: writing slot %d header: %w", s, err)
	}
	if err := d.sync(); err != nil {
		return err
	}
	d.seq++
	d.slot = s
	return nil
}

// sync flushes the device when it can (an *os.File), so the payload is on disk before the
// header that vouches for it.
func (d *StateDisk) sync() error {
	if f, ok := d.w.(interface{ Sync() error }); ok {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("state disk: sync: %w", err)
		}
	}
	return nil
}
