// Package boltmaptest measures, for tests, how much of a database file's
// memory map is resident in the process (MappedRSS): what the stores'
// boltmap.Releaser is to keep small.
package boltmaptest
