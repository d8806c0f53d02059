// Package wire is how baton's hosts talk over a stream: one frame codec (a
// varint length, then that many bytes; the length is capped by the
// reader) and one request/response exchange on top of it, with a deadline
// and size caps on both sides.
//
// A client opens a stream (its transport's business) and calls Exchange or
// Call: one request frame, the writing side closed, one response frame.
// A server's stream handler calls Serve: one request frame in, one
// response frame out. Protocols that send several frames on one stream
// (an index in pages, blocks, the raft log) use WriteFrame and ReadFrame
// directly.
package wire
