// Package durable makes many writes durable at once where the system can:
// on Linux, one syncfs(2) of a filesystem (SyncFS) replaces an fsync of
// each file and directory written. The folder applier (syncfs) and the
// server's block store (peer/folderstore) make their batches durable
// through it.
package durable
