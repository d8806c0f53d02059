// Package datafile stores baton's collections on disk: one append-friendly
// data file per collection (domain.dat, catalog.dat, report.dat), each a
// header followed by checksummed frames holding opaque records. It
// implements collections.Storage. It knows nothing of what a record means:
// the collections package stores signed or certified updates in them and
// verifies every record it loads.
//
// # Format (version 1)
//
// All integers are unsigned; the checksum is little-endian.
//
//	header, 16 bytes:
//	+---------------+---------+------+--------------------+
//	| "BATONDF"     | version | kind | reserved, all zero |
//	| 7 bytes ASCII | 0x01    | 1..3 | 7 bytes            |
//	+---------------+---------+------+--------------------+
//	 0               7         8      9                  15
//
//	then zero or more frames, back to back to the end of the file:
//	+-----------------+-------------------+------------------------------+
//	| length          | payload           | checksum                     |
//	| uvarint, 1..4 B | length bytes      | CRC-32C of length||payload,  |
//	| minimal, <= cap | the record        | 4 bytes little-endian        |
//	+-----------------+-------------------+------------------------------+
//
// kind is the collections.Kind byte (1 domain, 2 catalog, 3 report). A frame's
// offset is the offset of its length's first byte; it is what
// collections.Entry.Offset and DataFileError.Offset report. A record is at
// most MaxRecordSize (4 MiB) bytes, enforced when writing and when reading,
// so a corrupted length cannot make the decoder allocate or skip gigabytes;
// the length is uvarint-encoded minimally (Go's binary.AppendUvarint), so
// every record list has exactly one encoding.
//
// The checksum is CRC-32C (Castagnoli). Its job is to find torn writes and
// media corruption, not tampering: anyone who can write the file can
// recompute any unkeyed checksum, and the records carry their own signatures,
// which the collections package verifies on load. For that job CRC-32C is the
// right tool: it detects every single-bit error, every odd number of bit
// errors and every burst of up to 32 bits within a frame, misses other random
// damage with probability 2^-32 (and such a record then still has to pass
// signature verification), costs 4 bytes per frame, is in the standard
// library and is hardware-accelerated on amd64 and arm64. A truncated BLAKE3
// would cost 8 bytes and a dependency for no guarantee the signatures do not
// already give.
//
// # Decoding
//
// Decode is pure. It returns every whole record with its offset, or an error,
// never both:
//   - an empty file: no entries, TornAt -1;
//   - a short header, wrong magic, unknown version, another collection's kind
//     or a non-zero reserved byte: *collections.DataFileError at offset 0;
//   - a frame with an over-cap or non-minimal length, or whose checksum fails
//     while non-zero bytes follow it: *collections.DataFileError at that
//     frame's offset;
//   - a file that ends inside its final frame, or whose final frame fails its
//     checksum followed by nothing or only zero bytes (a file system may
//     persist a file's new size before all of its new data): the entries
//     before it and TornAt set to its offset, no error.
//
// A torn tail is what a crash in the middle of an Append leaves, and it can
// only be the last frame. One limitation follows from the frame layout: a bit
// flip in a frame's length that makes the frame run past the end of the file
// also reads as a torn tail at that frame, so the records after it are not
// returned. Such damage is not silent (TornAt is set), and whatever it drops is
// recovered from peers by anti-entropy like any other missing update.
//
// # Durability contract
//
//   - A new file is created atomically with its header and first record
//     (internal/atomicfile: temp file, fsync, rename, directory fsync), so a
//     file never exists without a whole header.
//   - Append writes one frame with one write call to a file opened with
//     O_APPEND, then fsyncs it; when it returns nil the record survives a
//     crash. A crash or a failure (a full disk) during Append leaves at most
//     one partial frame at the end, which Load reports as TornAt.
//   - Replace builds the whole file in memory and replaces it atomically;
//     after a crash the file is the old one or the new one.
//   - Data files have permissions 0600 and the directory 0700.
//   - The Store holds no open files between calls: there is nothing to close.
//
// # Usage
//
// Load each collection at start-up. If Loaded.TornAt >= 0, Replace the file
// with the loaded entries' Data to cut the torn tail off; if Load returns a
// *collections.DataFileError (or the records fail verification),
// Quarantine the file and rebuild from peers. Append refuses with
// ErrNeedsRepair while a known torn tail, a load error or a failed Append
// is unrepaired, so a new record never lands after garbage; the first
// Append after Open checks the file itself if nothing was loaded. Compact
// with Replace. A Store is for one goroutine, and a directory for one Store.
package datafile
