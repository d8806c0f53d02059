// Package boltmap holds what baton's bbolt databases share about their
// memory maps: how much address space a database maps from the start
// (InitialMmap), and letting go of the mapped pages a bulk read or write
// touched (Release), so that a database read through its map does not
// stay resident in the process.
package boltmap
