// Package collectionstest helps test code built on collections: an
// in-memory Storage that can be corrupted and truncated, a deterministic
// test Domain (servers, a spare server, an agent, all with keys from
// identitytest), helpers that sign, certify and apply updates, and
// AssertSameDigests.
package collectionstest
