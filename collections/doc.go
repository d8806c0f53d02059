// Package collections is baton's replicated state: the Domain, Catalog and
// Report collections as signed, verified, deterministically merged records.
// It is pure: no goroutines, no clocks (time is passed in), no network.
package collections
