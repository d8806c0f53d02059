package folderstore

// SetDiskFault makes each step of d's block writes call f first, and fail
// with its error.
func SetDiskFault(d *Disk, f func(step string) error) { d.fault = f }

// SetStoreFault makes each step of s's commits call f first, and fail with
// its error.
func SetStoreFault(s *Store, f func(step string) error) { s.fault = f }

// SetReadHook makes every read of a snapshot's entries call f with its
// sequence first.
func SetReadHook(s *Store, f func(seq uint64)) { s.onRead = f }
