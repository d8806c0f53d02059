package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/baton-sync/baton/syncfs"
)

// floorStep is one step every byte of the big dataset must go through on
// its way from alice to bob, measured alone on this machine.
type floorStep struct {
	Name  string `json:"name"`
	Times int    `json:"times"` // how often the dataset goes through it
	// PerGiB is the CPU time (user and system, all threads) the step
	// takes for 1 GiB, the median of the rounds.
	PerGiB time.Duration `json:"-"`
	PerMS  float64       `json:"cpu_ms_per_gib"`
}

// floorResult is the CPU time the steps every byte of the big dataset must
// go through take here, with the algorithms baton uses (BLAKE3, Go's TLS
// 1.3), and the wall time that allows at best.
type floorResult struct {
	Steps  []floorStep `json:"steps"`
	CPU    float64     `json:"cpu_ms"`
	Wall   float64     `json:"wall_ms"`
	NumCPU int         `json:"num_cpu"`
}

// floorBytes is how much each step is measured over (at scale 1); the
// figures are scaled to 1 GiB.
const floorBytes = 256 << 20

// measureFloor measures the steps every byte of the big dataset goes
// through whatever the design, each alone and with nothing else running in
// the process:
//
//   - alice reads each file once (page cache) and chunks and hashes it;
//   - it crosses two TLS 1.3 connections over loopback TCP (alice to the
//     server, the server to bob), counted for sender and receiver;
//   - the server and bob each verify every block's hash and write it to
//     a new file that is then fsynced.
//
// Everything else baton does (the libp2p stream multiplexer, indexes,
// reading blocks back to serve them) is overhead above this floor. The
// wall-time floor is the CPU time spread over all CPUs, busy all the time:
// a lower bound that ignores the disk and the order of the steps.
func measureFloor(ctx context.Context, dir string, size, rounds int, progress io.Writer) (*floorResult, error) {
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(dir, "baton-bench-floor-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	hs, err := syncfs.NewHasher(syncfs.DefaultChunking)
	if err != nil {
		return nil, err
	}
	var blocks []syncfs.Block
	// The file read back, written before the timing.
	readBack := filepath.Join(tmp, "r")
	if err := writeFloorFile(readBack, data); err != nil {
		return nil, err
	}
	cert, err := floorCert()
	if err != nil {
		return nil, err
	}
	steps := []floorTask{
		{"write to a new file and fsync", 2, func(round int) error {
			return writeFloorFile(filepath.Join(tmp, fmt.Sprintf("w%d", round)), data)
		}, func(round int) error {
			// Each round's file is removed after it: the next round's
			// pages are those freed, as when a run follows another, not
			// memory the system never touched (which costs several
			// times more in some virtual machines).
			return os.Remove(filepath.Join(tmp, fmt.Sprintf("w%d", round)))
		}},
		{"read from the page cache", 1, func(int) error {
			return readFloorFile(readBack)
		}, nil},
		{"chunk and hash (scan)", 1, func(int) error {
			// One goroutine (hs.Parallel unset): the least CPU time.
			var err error
			blocks, _, err = hs.HashFile(bytes.NewReader(data))
			return err
		}, nil},
		{"verify each block's hash", 2, func(int) error {
			for _, b := range blocks {
				if syncfs.HashBytes(data[b.Offset:b.Offset+int64(b.Size)]) != b.Hash {
					return errors.New("a block does not verify")
				}
			}
			return nil
		}, nil},
		{"TLS 1.3 over loopback TCP (both ends)", 2, func(int) error {
			return tlsFloor(ctx, cert, data)
		}, nil},
	}
	res := &floorResult{NumCPU: runtime.NumCPU()}
	var total time.Duration
	for _, st := range steps {
		per, err := st.time(ctx, rounds, size)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "floor: %s: %s of CPU per GiB\n", st.name, durText(per))
		res.Steps = append(res.Steps, floorStep{Name: st.name, Times: st.times, PerGiB: per, PerMS: ms(per)})
		total += time.Duration(st.times) * per
	}
	res.CPU = ms(total)
	res.Wall = ms(total / time.Duration(max(1, res.NumCPU)))
	return res, nil
}

// floorTask is one step of the floor, which each byte goes through times
// times in a run.
type floorTask struct {
	name  string
	times int
	run   func(round int) error
	after func(round int) error // untimed
}

// time runs the step rounds times over size bytes and returns the median
// CPU time it took per GiB.
func (st floorTask) time(ctx context.Context, rounds, size int) (time.Duration, error) {
	var cpus []time.Duration
	for round := range rounds {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		runtime.GC()
		c0 := cpuTime()
		if err := st.run(round); err != nil {
			return 0, fmt.Errorf("floor step %q: %w", st.name, err)
		}
		cpus = append(cpus, (cpuTime()-c0)*(1<<30)/time.Duration(size))
		if st.after != nil {
			if err := st.after(round); err != nil {
				return 0, fmt.Errorf("floor step %q: %w", st.name, err)
			}
		}
	}
	return median(cpus), nil
}

func writeFloorFile(name string, data []byte) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	for off := 0; off < len(data); off += 384 << 10 {
		if _, err := f.WriteAt(data[off:min(off+384<<10, len(data))], int64(off)); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readFloorFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		_, err := f.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// floorCert makes a self-signed certificate for tlsFloor.
func floorCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// tlsFloor sends data over a TLS 1.3 connection on 127.0.0.1, in 64 KiB
// writes (a stream multiplexer frame), and reads it on the other end.
func tlsFloor(ctx context.Context, cert tls.Certificate, data []byte) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	got := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- err
			return
		}
		s := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
		defer s.Close()
		n, err := io.CopyBuffer(io.Discard, io.LimitReader(s, int64(len(data))), make([]byte, 256<<10))
		if err == nil && n != int64(len(data)) {
			err = io.ErrUnexpectedEOF
		}
		got <- err
	}()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		return err
	}
	// The certificate is the one made above: only the cost of the
	// channel is measured here, not who is at the other end.
	cl := tls.Client(c, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	defer cl.Close()
	for off := 0; off < len(data); off += 64 << 10 {
		if _, err := cl.Write(data[off:min(off+64<<10, len(data))]); err != nil {
			return err
		}
	}
	return <-got
}

// writeFloor prints the floor for people.
func writeFloor(w io.Writer, f *floorResult, big *datasetResult) {
	fmt.Fprintf(w, "\nfloor for 1 GiB from alice to bob through the server on this machine (each step measured alone):\n")
	for _, s := range f.Steps {
		fmt.Fprintf(w, "  %-40s  %d x %8s  = %8s of CPU\n", s.Name, s.Times, durText(s.PerGiB), durText(time.Duration(s.Times)*s.PerGiB))
	}
	cpu := time.Duration(f.CPU * float64(time.Millisecond))
	fmt.Fprintf(w, "  %-40s                = %8s of CPU, %s on %d CPUs kept busy all the time\n", "total", durText(cpu), durText(time.Duration(f.Wall*float64(time.Millisecond))), f.NumCPU)
	if big != nil && big.CPUMS > 0 && big.Bytes > 0 {
		perGiB := big.CPUMS * float64(1<<30) / float64(big.Bytes)
		fmt.Fprintf(w, "  the big dataset used %s of CPU per GiB (median): %.2f times the floor\n", durText(time.Duration(perGiB*float64(time.Millisecond))), perGiB/f.CPU)
	}
}
