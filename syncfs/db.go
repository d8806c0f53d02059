package syncfs

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/baton-sync/baton/internal/boltmap"
	"github.com/baton-sync/baton/internal/canon"
	"go.etcd.io/bbolt"
)

// ErrBadDB reports a database that is not a baton index store, or holds a
// malformed record.
var ErrBadDB = errors.New("invalid index database")

// dbFormat is stored in the meta bucket; a different value is refused.
var dbFormat = []byte("baton-syncfs-1")

var (
	bucketMeta    = []byte("meta")
	bucketFolders = []byte("folders")
	bucketLocal   = []byte("local")
	bucketRemote  = []byte("remote")
	keyFormat     = []byte("format")
)

// maxEntrySize caps one stored local entry (a file of tens of GiB has a
// block list of a few MiB).
const maxEntrySize = canon.MaxSize

// DB persists, per folder, this device's Local (so a restart does not
// rehash) and the latest signed index of every other device, in one bbolt
// file per agent. Entries are stored one per key under a bucket per
// folder. DB is safe for concurrent use.
type DB struct {
	b   *bbolt.DB
	rel boltmap.Releaser
}

// OpenDB opens or creates the database at path. It fails after a second if
// another process holds it.
func OpenDB(path string) (*DB, error) {
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, InitialMmapSize: boltmap.InitialMmap(0)})
	if err != nil {
		return nil, fmt.Errorf("opening index database %s: %w", path, err)
	}
	err = b.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch f := meta.Get(keyFormat); {
		case f == nil:
			if err := meta.Put(keyFormat, dbFormat); err != nil {
				return err
			}
		case !bytes.Equal(f, dbFormat):
			return fmt.Errorf("%w: format %q, want %q", ErrBadDB, f, dbFormat)
		}
		_, err = tx.CreateBucketIfNotExists(bucketFolders)
		return err
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("opening index database %s: %w", path, err)
	}
	return &DB{b: b}, nil
}

// Close closes the database.
func (db *DB) Close() error { return db.b.Close() }

// storedEntry is one local entry as stored.
type storedEntry struct {
	File FileInfo  `cbor:"1,keyasint"`
	Disk *DiskStat `cbor:"2,keyasint,omitempty"`
}

// seekAfter positions c at the first key after after, or at the first
// key if after is nil, and returns it.
func seekAfter(c *bbolt.Cursor, after []byte) (k, v []byte) {
	if after == nil {
		return c.First()
	}
	if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
		k, v = c.Next()
	}
	return k, v
}

// folderBucket returns folder's bucket, creating it if create.
func folderBucket(tx *bbolt.Tx, folder string, create bool) (*bbolt.Bucket, error) {
	if folder == "" {
		return nil, errors.New("index database: empty folder ID")
	}
	fs := tx.Bucket(bucketFolders)
	if fs == nil {
		return nil, fmt.Errorf("%w: no folders bucket", ErrBadDB)
	}
	if !create {
		return fs.Bucket([]byte(folder)), nil
	}
	return fs.CreateBucketIfNotExists([]byte(folder))
}

// maxTxEntries bounds the entries one transaction of PutLocal or
// PutLocalEntries writes: bbolt holds a transaction's changed pages and
// nodes in memory until it commits (40 MB for 100,000 new entries at
// once; 7.6 MB above what the Local holds with 8,192 a transaction, 4.8
// MB with 1,024).
const maxTxEntries = 1024

// PutLocal replaces folder's stored Local with l. It encodes every entry
// but writes only those that differ from the stored ones, and removes the
// stored entries l lacks. To store a few changed entries, PutLocalEntries
// costs only what it writes.
//
// The entries are written in transactions of at most maxTxEntries. A
// crash between two leaves some entries as stored before: each stored
// entry is still one that was on disk (the stored Local lags the disk,
// never runs ahead of it), and the first scan after a restart finds what
// the store did not record.
func (db *DB) PutLocal(folder string, l Local) error {
	defer db.rel.Settle(db.b)
	err := db.b.Update(func(tx *bbolt.Tx) error {
		fb, err := folderBucket(tx, folder, true)
		if err != nil {
			return err
		}
		if err := fb.Delete(keyIndexed); err != nil { // made anew at the next OpenLocal
			return err
		}
		lb, err := fb.CreateBucketIfNotExists(bucketLocal)
		if err != nil {
			return err
		}
		var stale [][]byte
		c := lb.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			db.rel.Touched(tx)
			if _, ok := l.Get(string(k)); !ok {
				stale = append(stale, bytes.Clone(k))
			}
		}
		for _, k := range stale {
			if err := lb.Delete(k); err != nil {
				return fmt.Errorf("removing %s: %w", k, err)
			}
		}
		return nil
	})
	var changed []string
	if err == nil {
		// The names sorted, not the entries: a copy of every entry
		// would cost the Local's size again while the store runs. Only
		// the entries stored otherwise are written: a transaction costs
		// pages even when it writes nothing.
		err = db.b.View(func(tx *bbolt.Tx) error {
			fb, err := folderBucket(tx, folder, false)
			if err != nil {
				return err
			}
			var lb *bbolt.Bucket
			if fb != nil {
				lb = fb.Bucket(bucketLocal)
			}
			for _, n := range slices.Sorted(l.Names()) {
				db.rel.Touched(tx)
				f, _ := l.Get(n)
				v := encodeEntry(l, f)
				if lb == nil || !bytes.Equal(lb.Get([]byte(n)), v) {
					changed = append(changed, n)
				}
			}
			return nil
		})
	}
	if err == nil {
		err = db.putEntries(folder, l, changed)
	}
	if err != nil {
		return fmt.Errorf("storing local index of folder %s: %w", folder, err)
	}
	return nil
}

// PutLocalEntries updates folder's stored Local with the entries names of
// l: each is stored as l holds it (with its disk stat), or removed if l
// has no such entry. The entries not named are left as stored. It costs
// what it writes, not the folder: after a change of a few entries, it
// stores the same Local as PutLocal(folder, l) would if the stored Local
// was l before the change. Like PutLocal, it writes in transactions of at
// most maxTxEntries.
func (db *DB) PutLocalEntries(folder string, l Local, names []string) error {
	if len(names) == 0 {
		return nil
	}
	defer db.rel.Settle(db.b)
	names = slices.Clone(names)
	slices.Sort(names) // neighbours share pages
	names = slices.Compact(names)
	if err := db.putEntries(folder, l, names); err != nil {
		return fmt.Errorf("storing %d entries of the local index of folder %s: %w", len(names), folder, err)
	}
	return nil
}

// putEntries stores the entries names (sorted, unique) of l, or removes
// those l lacks, maxTxEntries a transaction.
func (db *DB) putEntries(folder string, l Local, names []string) error {
	for len(names) > 0 {
		chunk := names[:min(len(names), maxTxEntries)]
		names = names[len(chunk):]
		err := db.b.Update(func(tx *bbolt.Tx) error {
			fb, err := folderBucket(tx, folder, true)
			if err != nil {
				return err
			}
			// Its indexes are made anew at the next OpenLocal.
			if err := fb.Delete(keyIndexed); err != nil {
				return err
			}
			lb, err := fb.CreateBucketIfNotExists(bucketLocal)
			if err != nil {
				return err
			}
			if last, _ := lb.Cursor().Last(); last == nil || string(last) < chunk[0] {
				lb.FillPercent = 0.9 // written after every stored key, in key order
			}
			for _, n := range chunk {
				db.rel.Touched(tx)
				f, ok := l.Get(n)
				if !ok {
					if err := lb.Delete([]byte(n)); err != nil {
						return fmt.Errorf("removing %s: %w", n, err)
					}
					continue
				}
				if f.Name != n {
					return fmt.Errorf("entry %q holds %q", n, f.Name)
				}
				if err := lb.Put([]byte(n), encodeEntry(l, f)); err != nil {
					return fmt.Errorf("storing %s: %w", n, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// encodeEntry returns the stored form of f, an entry of l, with its disk
// stat.
func encodeEntry(l Local, f FileInfo) []byte {
	var d *DiskStat
	if st, ok := l.Stat(f.Name); ok {
		d = &st
	}
	return appendStored(nil, &f, d)
}

// Local returns folder's stored Local, empty if none was stored. Every entry
// is validated.
func (db *DB) Local(folder string) (Local, error) {
	defer db.rel.Settle(db.b)
	l := NewLocal()
	err := db.b.View(func(tx *bbolt.Tx) error {
		fb, err := folderBucket(tx, folder, false)
		if err != nil || fb == nil {
			return err
		}
		lb := fb.Bucket(bucketLocal)
		if lb == nil {
			return nil
		}
		return lb.ForEach(func(k, v []byte) error {
			db.rel.Touched(tx)
			e, err := decodeEntry(k, v)
			if err != nil {
				return err
			}
			l.Set(e.File)
			if e.Disk != nil {
				l.SetStat(e.File.Name, *e.Disk)
			}
			return nil
		})
	})
	if err != nil {
		return Local{}, fmt.Errorf("loading local index of folder %s: %w", folder, err)
	}
	return l, nil
}

// decodeEntry decodes and validates the stored entry v under key k.
func decodeEntry(k, v []byte) (storedEntry, error) {
	e, _, err := decodeStored(k, v)
	return e, err
}

// decodeStored decodes and validates the stored entry v under key k, and
// reports whether it upgraded it from an older form.
func decodeStored(k, v []byte) (storedEntry, bool, error) {
	var e storedEntry
	derive := true // the file hash is stored, not derived from the blocks
	if len(v) > 0 && v[0] == storedPacked {
		var err error
		if e, derive, err = decodePacked(string(k), v); err != nil {
			return storedEntry{}, false, fmt.Errorf("%w: entry %q: %v", ErrBadDB, k, err)
		}
	} else if err := canon.Unmarshal(v, &e, maxEntrySize); err != nil {
		return storedEntry{}, false, fmt.Errorf("%w: entry %q: %v", ErrBadDB, k, err)
	}
	if e.File.Name != string(k) {
		return storedEntry{}, false, fmt.Errorf("%w: entry %q holds %q", ErrBadDB, k, e.File.Name)
	}
	upgraded := false
	if derive && e.File.Type == TypeFile && !e.File.Deleted {
		// Entries stored before FileHash was derived from the block list
		// hold a hash of the whole content: derive it again (the blocks
		// are what the scanner hashed, and Validate checks them).
		h := FileHashOf(e.File.Blocks)
		upgraded = h != e.File.FileHash
		e.File.FileHash = h
	}
	if err := e.File.Validate(); err != nil {
		return storedEntry{}, false, fmt.Errorf("%w: %v", ErrBadDB, err)
	}
	return e, upgraded, nil
}

// PutRemote stores signed, the latest signed index (as SignIndex made it)
// of device for folder, replacing the previous one. The caller verifies it
// first.
func (db *DB) PutRemote(folder, device string, signed []byte) error {
	if device == "" || len(signed) > MaxIndexSize {
		return fmt.Errorf("storing index of %q for folder %s: empty device or %d bytes (limit %d)", device, folder, len(signed), MaxIndexSize)
	}
	err := db.b.Update(func(tx *bbolt.Tx) error {
		fb, err := folderBucket(tx, folder, true)
		if err != nil {
			return err
		}
		rb, err := fb.CreateBucketIfNotExists(bucketRemote)
		if err != nil {
			return err
		}
		return rb.Put([]byte(device), signed)
	})
	if err != nil {
		return fmt.Errorf("storing index of %s for folder %s: %w", device, folder, err)
	}
	return nil
}

// Remote returns the stored signed index of device for folder, nil if none.
// The caller verifies it again with OpenIndex.
func (db *DB) Remote(folder, device string) ([]byte, error) {
	var out []byte
	err := db.b.View(func(tx *bbolt.Tx) error {
		fb, err := folderBucket(tx, folder, false)
		if err != nil || fb == nil {
			return err
		}
		if rb := fb.Bucket(bucketRemote); rb != nil {
			if v := rb.Get([]byte(device)); v != nil {
				if len(v) > MaxIndexSize {
					return fmt.Errorf("%w: index of %s is %d bytes", ErrBadDB, device, len(v))
				}
				out = bytes.Clone(v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading index of %s for folder %s: %w", device, folder, err)
	}
	return out, nil
}

// Remotes returns the devices that have a stored index for folder, sorted.
func (db *DB) Remotes(folder string) ([]string, error) {
	var out []string
	err := db.b.View(func(tx *bbolt.Tx) error {
		fb, err := folderBucket(tx, folder, false)
		if err != nil || fb == nil {
			return err
		}
		if rb := fb.Bucket(bucketRemote); rb != nil {
			return rb.ForEach(func(k, _ []byte) error {
				out = append(out, string(k))
				return nil
			})
		}
		return nil
	})
	return out, err
}

// DeleteFolder forgets everything stored for folder.
func (db *DB) DeleteFolder(folder string) error {
	return db.b.Update(func(tx *bbolt.Tx) error {
		fs := tx.Bucket(bucketFolders)
		if fs == nil || fs.Bucket([]byte(folder)) == nil {
			return nil
		}
		return fs.DeleteBucket([]byte(folder))
	})
}
