// Package foldersynctest holds helpers for tests and benchmarks of
// package foldersync: a Catalog view set up by hand instead of taken from
// a replicated Domain.
package foldersynctest
