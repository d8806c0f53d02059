package foldersync

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/baton-sync/baton/syncfs"
)

// The folder-sync protocols.
const (
	// ProtoIndex asks a host for its signed index of a folder:
	// indexRequest, answered by an indexHeader and its pages.
	ProtoIndex = protocol.ID("/baton/folder/index/1.0.0")
	// ProtoBlock asks a host for blocks of a folder by hash: blockRequest,
	// answered by one frame per block, in order.
	ProtoBlock = protocol.ID("/baton/folder/block/1.0.0")
	// ProtoNotify tells a host that this host's index of a folder changed
	// (notifyMsg), answered by a receipt: an empty frame once the folder
	// took it, or {1} if the folder is not synced there.
	ProtoNotify = protocol.ID("/baton/folder/notify/1.0.0")
)

// OverLimited reports whether proto may travel over a limited connection
// (one relayed by a server, which bounds its bytes and time): indexes and
// notifications do, blocks never. Bulk blocks wait for a direct
// connection or come from a server; the transport refuses a block stream
// over a limited connection both ways.
func OverLimited(proto protocol.ID) bool { return proto == ProtoIndex || proto == ProtoNotify }

// Caps and deadlines of the protocols.
const (
	maxRequest    = 64 << 10  // one request frame
	maxHeader     = 4 << 10   // an index response header
	maxPages      = 2048      // pages in one index response: about 8,000,000 files of one block (64 of 2 MiB did not hold 1,000,000)
	pageTarget    = 512 << 10 // estimated bytes of entries per index page: a page is held decoded while it is made and while it is read
	maxBatch      = 64        // blocks in one block request
	maxBatchBytes = 8 << 20   // bytes of blocks in one block request
	ioTimeout     = 10 * time.Second
	dialTimeout   = 5 * time.Second
)

// Index response statuses.
const (
	statusFull        uint8 = 1 // the pages hold every entry
	statusDelta       uint8 = 2 // the pages hold the entries changed since the requester's sequence
	statusNotModified uint8 = 3 // the requester's sequence is current
	statusError       uint8 = 4 // Error says why there is no index
)

// Block frame statuses (the first byte of each frame).
const (
	blockOK      byte = 0 // the block's bytes follow
	blockMissing byte = 1 // this host does not have the block now
)

// indexRequest asks for a folder's index. Session and Have are what the
// requester already holds from the responder (zero: nothing), so the
// responder can answer NotModified or with the changes only.
type indexRequest struct {
	Folder  string `cbor:"1,keyasint"`
	Session uint64 `cbor:"2,keyasint,omitempty"`
	Have    uint64 `cbor:"3,keyasint,omitempty"`
}

// indexHeader starts an index response; Pages signed indexes follow, each
// in its own frame, with the header's Sequence, sorted and not overlapping.
type indexHeader struct {
	Status   uint8  `cbor:"1,keyasint"`
	Session  uint64 `cbor:"2,keyasint,omitempty"`
	Sequence uint64 `cbor:"3,keyasint,omitempty"`
	Pages    uint32 `cbor:"4,keyasint,omitempty"`
	Error    string `cbor:"5,keyasint,omitempty"`
	// From a server hosting the folder to a member device, when the
	// owner has a quota: the owner's bytes and quota, and why the
	// requester's last changes were not taken ("" if they were).
	QuotaUsed  int64  `cbor:"6,keyasint,omitempty"`
	QuotaLimit int64  `cbor:"7,keyasint,omitempty"`
	Refused    string `cbor:"8,keyasint,omitempty"`
}

// blockRef names one block.
type blockRef struct {
	Hash syncfs.Hash `cbor:"1,keyasint"`
	Size uint32      `cbor:"2,keyasint"`
}

// blockRequest asks for up to maxBatch blocks of a folder.
type blockRequest struct {
	Folder string     `cbor:"1,keyasint"`
	Blocks []blockRef `cbor:"2,keyasint"`
}

// notifyMsg says that the sender's index of Folder is now at Sequence.
type notifyMsg struct {
	Folder   string `cbor:"1,keyasint"`
	Session  uint64 `cbor:"2,keyasint,omitempty"`
	Sequence uint64 `cbor:"3,keyasint,omitempty"`
}

func (r blockRequest) validate(maxBlock uint32) error {
	if r.Folder == "" || len(r.Blocks) == 0 || len(r.Blocks) > maxBatch {
		return fmt.Errorf("block request: folder %q, %d blocks (1 to %d)", r.Folder, len(r.Blocks), maxBatch)
	}
	var total int64
	for _, b := range r.Blocks {
		if b.Size == 0 || b.Size > maxBlock {
			return fmt.Errorf("block request: block size %d out of range", b.Size)
		}
		total += int64(b.Size)
	}
	if total > maxBatchBytes {
		return fmt.Errorf("block request: %d bytes, limit %d", total, maxBatchBytes)
	}
	return nil
}
