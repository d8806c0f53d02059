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
func init() {
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
