package syncfs

import "slices"

// maxInterned bounds how many distinct single-counter vectors an Interner
// keeps; past it, new ones are kept as they come.
const maxInterned = 1 << 16

// Interner makes entries decoded from the network share memory with what
// a host already holds: the name, version and block list of the entry it
// holds under the same name when they are equal, a device ID once per
// device, and one copy of each common single-counter version (every file a
// device added and nobody changed since has one). A decoded index holds
// every string and slice of its own; shared, a folder's entries cost their
// map slots and little more in each of the indexes a host keeps. Sharing
// is safe because FileInfo, Vector and block lists are values that no code
// changes in place.
//
// The zero value is ready to use. An Interner is not safe for concurrent
// use.
type Interner struct {
	devices map[string]string
	single  map[Counter]Vector
}

// Entry returns fi sharing what it can with like, the entry held under
// the same name (ok false if none), and with the Interner's tables. The
// result equals fi field for field. fi must be the caller's own, just
// decoded: its version's device IDs are replaced in place.
func (in *Interner) Entry(fi FileInfo, like FileInfo, ok bool) FileInfo {
	if ok && like.Name == fi.Name {
		fi.Name = like.Name
	}
	if ok && like.Version.Equal(fi.Version) {
		fi.Version = like.Version
	} else {
		fi.Version = in.vector(fi.Version)
	}
	if ok && len(fi.Blocks) > 0 && slices.Equal(like.Blocks, fi.Blocks) {
		fi.Blocks = like.Blocks
	}
	return fi
}

// vector returns v with its device IDs interned, and a shared copy if it
// has one counter.
func (in *Interner) vector(v Vector) Vector {
	if in.devices == nil {
		in.devices = map[string]string{}
		in.single = map[Counter]Vector{}
	}
	for i, c := range v.Counters {
		d, ok := in.devices[c.Device]
		if !ok {
			d = c.Device
			in.devices[d] = d
		}
		v.Counters[i].Device = d
	}
	if len(v.Counters) != 1 {
		return v
	}
	if s, ok := in.single[v.Counters[0]]; ok {
		return s
	}
	if len(in.single) < maxInterned {
		in.single[v.Counters[0]] = v
	}
	return v
}
