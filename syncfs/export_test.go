package syncfs

import (
	"context"
	"encoding/binary"
	"time"
)

// Entry returns l's entry of name, the zero FileInfo if l has none: Get,
// for a test's expressions.
func (l *Local) Entry(name string) FileInfo {
	f, _ := l.Get(name)
	return f
}

// Cut exposes Chunking.cut to the external tests.
func Cut(c Chunking, data []byte) int { return c.cut(data) }

// CutSerial exposes Chunking.cutSerial to the external tests.
func CutSerial(c Chunking, data []byte) int { return c.cutSerial(data) }

// cutSerial is cut hashing one byte after another: the definition the
// faster cut is checked against.
func (c Chunking) cutSerial(data []byte) int {
	n := min(len(data), int(c.MaxSize))
	minSize := int(c.MinSize)
	if n <= minSize {
		return n
	}
	data = data[:n]
	mask := ^uint64(0) << (64 - c.AverageBits)
	fp := gearWarm(data[minSize-64 : minSize])
	if j := cutFrom(data[minSize:], fp, mask); j >= 0 {
		return minSize + j + 1
	}
	return n
}

// GearDigest returns the BLAKE3 hash of the gear table, little-endian.
func GearDigest() []byte {
	var b []byte
	for _, v := range gear {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	h := HashBytes(b)
	return h[:]
}

// SetBusySeams makes ap take for busy the errors busy says are, and wait
// with sleep between attempts.
func SetBusySeams(ap *Applier, busy func(error) bool, sleep func(context.Context, time.Duration) error) {
	ap.busy, ap.sleep = busy, sleep
}

// BusyOnWindows reports whether err says, on Windows, that another
// program holds a file.
func BusyOnWindows(err error) bool { return busyIn(err, windowsBusy) }

// BusyWaits are the waits between attempts at a busy file.
var BusyWaits = busyWaits
