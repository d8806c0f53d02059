// Package memtrim gives the memory a daemon's heap no longer uses back to
// the system once the daemon is at rest.
//
// Go's collector frees a burst of work's garbage for the heap to reuse,
// but returns the pages to the system only slowly: after a sync of
// 100,000 files an agent whose heap held 50 MB kept 150 MiB resident for
// minutes. A Trimmer looks every few seconds at two runtime metrics (the
// bytes allocated, and the heap's free memory not yet returned) and, when
// the process allocated little since the last look and holds much free
// memory, returns it (debug.FreeOSMemory): a daemon at rest then holds what
// it keeps, not what its last burst of work needed. A busy daemon is left
// alone: what it freed, it uses again.
//
// The executable's code and constant data count in the resident memory
// too, once touched (the kernel maps 64 KiB around each page read): 29
// MiB of an agent's, most of it touched only while starting. At its first
// look and whenever it returns heap memory, a Trimmer lets go of those
// pages (ReleaseExecutable); the page cache keeps them, and what runs is
// mapped again at once (16 MiB at rest, 22 during a sync of 100,000
// files).
//
//	t := memtrim.New(log)
//	go t.Run(ctx)
package memtrim
