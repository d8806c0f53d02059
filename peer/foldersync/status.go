package foldersync

import "time"

// Folder states.
const (
	StateIdle     = "idle"     // nothing to do
	StateScanning = "scanning" // looking for local changes
	StateSyncing  = "syncing"  // fetching an index or applying one
	StateError    = "error"    // the folder cannot be synced now; LastError says why
)

// FolderStatus describes one folder this host syncs.
type FolderStatus struct {
	ID   string `json:"id"`
	Root string `json:"root"`
	// Role is what this host is to the folder: "server" (the hosting
	// server, which keeps the canonical copy), "rw" (a member device whose
	// changes are accepted), "ro" (a read-only member device), or "" while
	// unknown (the Catalog does not say yet).
	Role  string `json:"role"`
	State string `json:"state"`
	// LocalFiles and LocalBytes count the files (and symlinks) in the
	// folder and their bytes, LocalDirs its directories.
	LocalFiles int   `json:"local_files"`
	LocalDirs  int   `json:"local_dirs"`
	LocalBytes int64 `json:"local_bytes"`
	// NeedFiles and NeedBytes are what is still to be taken from the
	// server's index (on the server: from the devices' indexes): entries to
	// create, change or delete and the bytes to fetch for them.
	NeedFiles int   `json:"need_files"`
	NeedBytes int64 `json:"need_bytes"`
	// LocalChanges counts the entries changed here that the server has not
	// accepted: on a read-write device, changes on their way; on a
	// read-only device, changes nobody will accept (Revert undoes them).
	// Conflict copies are not counted.
	LocalChanges int `json:"local_changes"`
	// InSync: the server's index is known and everything in it is here;
	// on a read-write device, the server also has every local change.
	InSync    bool   `json:"in_sync"`
	LastError string `json:"last_error,omitempty"`
	// Quota is the folder owner's quota and usage, as the hosting server
	// asked last said (on a device) or as this hosting server holds them;
	// nil when the owner has none. QuotaRefused (on a device): why that
	// server did not take some of this device's changes (ErrQuota's
	// text); they stay here, and go when there is room.
	Quota        *QuotaStatus `json:"quota,omitempty"`
	QuotaRefused string       `json:"quota_refused,omitempty"`
	// Failed lists changes that could not be applied at the last attempt
	// (at most MaxFailedShown of them, those tried most often first), with
	// why and how many attempts in a row failed. Stuck: one of them failed
	// Config.StuckAfter times or more, so the folder will not get in sync
	// by itself (LastError then starts with "stuck"); retries go on, at
	// the longest wait.
	Failed []FailedChange `json:"failed,omitempty"`
	Stuck  bool           `json:"stuck,omitempty"`
	// Busy lists changes not applied at the last attempt because another
	// program holds the file open (on Windows: a sharing or lock
	// violation), at most MaxFailedShown of them: the file stays as it
	// was, nothing is lost, and the change is tried again later. They are
	// not failures (not in Failed, never stuck), but the folder is not in
	// sync until they are applied.
	Busy []BusyEntry `json:"busy,omitempty"`
	// Emptied: the folder is stopped because its directory was found
	// empty without its marker file (LastError is then ErrEmptied's), until
	// Engine.Rescan confirms the files were deleted on purpose or the
	// directory is found as it should be again.
	Emptied bool `json:"emptied,omitempty"`
	// Skipped lists entries of other hosts' indexes that this host does
	// not take, with why (at most MaxSkippedShown of them, by path):
	// symlinks whose target is absolute or leaves the folder (unless
	// Config.OutsideSymlinks allows them), every symlink where this host
	// cannot create one (Windows without the privilege), names that clash
	// by case or normalization, names the file system cannot hold,
	// entries under those. SkippedCount counts them all.
	Skipped      []SkippedEntry `json:"skipped,omitempty"`
	SkippedCount int            `json:"skipped_count,omitempty"`
	// Sequence is this host's index sequence number; ServerSequence (on a
	// device) the server's, as last fetched.
	Sequence       uint64 `json:"sequence"`
	ServerSequence uint64 `json:"server_sequence,omitempty"`
	// Servers (on a device) lists the servers hosting the folder that
	// this device syncs with: those connected whose index it fetched at
	// its last request, the home server first. ServerSequence, InSync and
	// LocalChanges speak of the first one's index.
	Servers []string `json:"servers,omitempty"`
	// Devices lists the member devices that sync the folder with this
	// host: connected now, and whose request for this host's index it
	// answered since the engine started, by ID. On a server, the devices
	// syncing through it; on a device, others syncing with it directly.
	Devices []DeviceSync `json:"devices,omitempty"`
	// Fetched, Copied, Resumed and Served count block bytes since the
	// engine started: received from peers, reused from local files, taken
	// from the temporary file an interrupted fetch left (instead of being
	// fetched again: see syncfs.Applier.Resume), sent to peers. Like
	// Fetched and Copied, Resumed counts every attempt at a file, also one
	// that fails again.
	Fetched int64 `json:"fetched"`
	Copied  int64 `json:"copied"`
	Resumed int64 `json:"resumed"`
	Served  int64 `json:"served"`
	// LastScan and LastSync are when the folder was last scanned and last
	// took another host's changes (zero: not yet).
	LastScan time.Time `json:"last_scan,omitzero"`
	LastSync time.Time `json:"last_sync,omitzero"`
}

// DeviceSync is a member device syncing a folder with this host.
type DeviceSync struct {
	ID   string `json:"id"`   // its peer ID
	User string `json:"user"` // its user ("" if no longer a valid device)
	// LastRequest is when it last asked for this host's index.
	LastRequest time.Time `json:"last_request"`
}

// MaxFailedShown bounds FolderStatus.Failed.
const MaxFailedShown = 10

// MaxSkippedShown bounds FolderStatus.Skipped.
const MaxSkippedShown = 20

// SkippedEntry is an entry of another host's index that this host does
// not take.
type SkippedEntry struct {
	// Path is the entry's name in the folder (slash-separated).
	Path string `json:"path"`
	// Reason says why it is not taken.
	Reason string `json:"reason"`
}

// BusyEntry is a change not applied because another program holds its
// file.
type BusyEntry struct {
	// Path is the entry's name in the folder (slash-separated).
	Path string `json:"path"`
	// Reason is the last attempt's error.
	Reason string `json:"reason"`
}

// FailedChange is a change of a folder that could not be applied.
type FailedChange struct {
	// Path is the entry's name in the folder (slash-separated).
	Path string `json:"path"`
	// Reason is the last attempt's error.
	Reason string `json:"reason"`
	// Attempts counts the attempts in a row that failed.
	Attempts int `json:"attempts"`
}
