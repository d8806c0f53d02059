//go:build batonprofile && unix

package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
)

// A debug build (go build -tags batonprofile) profiles the CPU on demand:
// SIGUSR1 starts a profile, written to baton-cpu.PID.N.pprof in the
// temporary directory (TMPDIR) once the next SIGUSR1 ends it. The
// multi-process test TestMemoryFootprint uses it for its idle profile
// (BATON_MEM_PROFILE). Release builds have no such handler. The runtime
// says once that it cannot set the rate: the profile is at profileHz all the same.
// SIGUSR2 writes a heap profile (as of the last collection) to
// baton-heap.PID.N.pprof in the same directory.
func init() {
	heap := make(chan os.Signal, 1)
	signal.Notify(heap, syscall.SIGUSR2)
	go func() {
		for n := 1; ; n++ {
			<-heap
			name := filepath.Join(os.TempDir(), fmt.Sprintf("baton-heap.%d.%d.pprof", os.Getpid(), n))
			if err := writeHeap(name); err != nil {
				fmt.Fprintln(os.Stderr, "baton: heap profile:", err)
			}
		}
	}()
	const profileHz = 1000
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		var f *os.File
		for n := 0; ; {
			<-sig
			if f != nil {
				pprof.StopCPUProfile()
				err := f.Close()
				if err == nil {
					// Whole once it has its name.
					err = os.Rename(f.Name(), strings.TrimSuffix(f.Name(), ".part"))
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "baton: cpu profile:", err)
				}
				f = nil
				continue
			}
			n++
			name := filepath.Join(os.TempDir(), fmt.Sprintf("baton-cpu.%d.%d.pprof.part", os.Getpid(), n))
			var err error
			if f, err = os.Create(name); err == nil {
				// A daemon at rest runs for a few milliseconds a second:
				// sample ten times as often as the default.
				runtime.SetCPUProfileRate(profileHz)
				err = pprof.StartCPUProfile(f)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "baton: cpu profile:", err)
				if f != nil {
					f.Close()
					f = nil
				}
			}
		}
	}()
}

// writeHeap writes the heap profile to name, whole once it has its name.
func writeHeap(name string) error {
	f, err := os.Create(name + ".part")
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(name+".part", name)
}
