package syncfs

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/baton-sync/baton/internal/canon"
	"github.com/google/go-cmp/cmp"
	"go.etcd.io/bbolt"
)

// TestDBRestartDoesNotRehash stores a scanned Local, reopens the database
// and checks that a scan from the loaded Local reads no file.
func TestDBRestartDoesNotRehash(t *testing.T) {
	root := t.TempDir()
	put(t, root, "a.txt", []byte("alpha"), 0o644, baseTime)
	put(t, root, "d/b.bin", rnd(4, 300<<10), 0o600, baseTime)
	s := scanner(root, devA)
	l, _ := mustScan(t, s, Local{})
	l.Set(tombstone(FileInfo{Name: "old", Type: TypeFile}, Vector{}.Update(devA)))

	path := filepath.Join(t.TempDir(), "index.db")
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutLocal("folder-1", l); err != nil {
		t.Fatal(err)
	}
	if err := db.PutRemote("folder-1", devB, []byte("signed index of B")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Local("folder-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stateOf(&l), stateOf(&got)); diff != "" {
		t.Fatalf("Local after reopening differs:\n%s", diff)
	}
	if _, st := mustScan(t, s, got); st.Hashed != 0 || st.Changed != 0 {
		t.Errorf("scan after restart: %+v; want nothing hashed or changed", st)
	}
	if r, err := db.Remote("folder-1", devB); err != nil || string(r) != "signed index of B" {
		t.Errorf("Remote = %q, %v", r, err)
	}
	if r, err := db.Remote("folder-1", devA); err != nil || r != nil {
		t.Errorf("Remote of an unknown device = %q, %v; want nil, nil", r, err)
	}
	if devs, err := db.Remotes("folder-1"); err != nil || !slices.Equal(devs, []string{devB}) {
		t.Errorf("Remotes = %q, %v", devs, err)
	}
	if empty, err := db.Local("other"); err != nil || empty.Len() != 0 {
		t.Errorf("Local of an unknown folder = %v, %v; want empty", empty, err)
	}

	// Replacing drops entries no longer there.
	l.Delete("a.txt")
	if err := db.PutLocal("folder-1", l); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Local("folder-1"); cmp.Diff(stateOf(&l), stateOf(&got)) != "" {
		t.Errorf("after replacing: %s", cmp.Diff(stateOf(&l), stateOf(&got)))
	}
	if err := db.DeleteFolder("folder-1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Local("folder-1"); got.Len() != 0 {
		t.Error("DeleteFolder left entries")
	}
	if err := db.PutRemote("f", devB, make([]byte, MaxIndexSize+1)); err == nil {
		t.Error("PutRemote accepted an oversized index")
	}
}

func TestDBRefusesBadRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := OpenDB(path)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLocal()
	l.Set(FileInfo{Name: "x", Type: TypeDir, Version: Vector{}.Update(devA)})
	if err := db.PutLocal("f", l); err != nil {
		t.Fatal(err)
	}
	// Corrupt it behind the DB's back: a key that does not match, and a
	// hostile name.
	for _, bad := range [][2]string{{"y", "x"}, {"../z", "../z"}} {
		err := db.b.Update(func(tx *bbolt.Tx) error {
			fb, _ := folderBucket(tx, "f", false)
			lb := fb.Bucket(bucketLocal)
			e := l.Entry("x")
			e.Name = bad[1]
			v, err := marshalEntry(e)
			if err != nil {
				return err
			}
			return lb.Put([]byte(bad[0]), v)
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Local("f"); !errors.Is(err, ErrBadDB) {
			t.Errorf("Local with entry %q holding %q: %v; want ErrBadDB", bad[0], bad[1], err)
		}
		db.b.Update(func(tx *bbolt.Tx) error {
			fb, _ := folderBucket(tx, "f", false)
			return fb.Bucket(bucketLocal).Delete([]byte(bad[0]))
		})
	}
	db.Close()

	// A database of another format is refused.
	other := filepath.Join(t.TempDir(), "other.db")
	b, err := bbolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Update(func(tx *bbolt.Tx) error {
		m, _ := tx.CreateBucket(bucketMeta)
		return m.Put(keyFormat, []byte("something-else"))
	})
	b.Close()
	if _, err := OpenDB(other); !errors.Is(err, ErrBadDB) {
		t.Errorf("OpenDB of another format: %v; want ErrBadDB", err)
	}
}

// TestDBUpgradesFileHash loads an entry stored when the file hash was the
// hash of the whole content: it comes back with the hash derived from its
// blocks, valid.
func TestDBUpgradesFileHash(t *testing.T) {
	db, err := OpenDB(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blocks := []Block{{Offset: 0, Size: 3, Hash: HashBytes([]byte("abc"))}}
	old := FileInfo{Name: "a", Type: TypeFile, Size: 3, Mode: 0o644, ModTime: 1, Version: Vector{}.Update(devA),
		Blocks: blocks, FileHash: HashBytes([]byte("abc"))}
	if old.Validate() == nil {
		t.Fatal("an entry with the whole-content hash validates; the test is not exercising the upgrade")
	}
	l := NewLocal()
	l.Set(FileInfo{Name: "x", Type: TypeDir, Version: Vector{}.Update(devA)})
	if err := db.PutLocal("f", l); err != nil {
		t.Fatal(err)
	}
	err = db.b.Update(func(tx *bbolt.Tx) error {
		fb, _ := folderBucket(tx, "f", false)
		v, err := marshalEntry(old)
		if err != nil {
			return err
		}
		return fb.Bucket(bucketLocal).Put([]byte("a"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Local("f")
	if err != nil {
		t.Fatal(err)
	}
	if f := got.Entry("a"); f.FileHash != FileHashOf(blocks) || f.Validate() != nil {
		t.Errorf("loaded entry FileHash = %x; want FileHashOf its blocks %x", f.FileHash, FileHashOf(blocks))
	}
}

func marshalEntry(f FileInfo) ([]byte, error) {
	return canon.Marshal(storedEntry{File: f})
}

// FuzzDecodeEntry checks that no stored bytes crash the decoder and that
// whatever it accepts is valid and re-encodes to the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	fi := FileInfo{Name: "a/b", Type: TypeFile, Size: 3, Mode: 0o644, ModTime: 1, Version: Vector{}.Update(devA),
		Blocks: []Block{{Offset: 0, Size: 3, Hash: HashBytes([]byte("abc"))}}}
	fi.FileHash = FileHashOf(fi.Blocks)
	stale := fi
	stale.FileHash = HashBytes([]byte("abc")) // as stored before FileHashOf
	for _, e := range []storedEntry{{File: fi}, {File: fi, Disk: &DiskStat{Size: 3, ModTime: 1, Inode: 9, Racy: true}}, {File: stale}} {
		v, err := canon.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte("a/b"), v)
		f.Add([]byte("a/b"), appendStored(nil, &e.File, e.Disk))
	}
	f.Fuzz(func(t *testing.T, k, v []byte) {
		e, err := decodeEntry(k, v)
		if err != nil {
			return
		}
		if err := e.File.Validate(); err != nil {
			t.Fatalf("accepted an invalid entry: %v", err)
		}
		again, err := canon.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeEntry(k, again); err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		packed := appendStored(nil, &e.File, e.Disk)
		if e2, err := decodeEntry(k, packed); err != nil || !reflect.DeepEqual(e2, e) {
			t.Fatalf("entry stored packed decodes to %+v, %v; want %+v", e2, err, e)
		}
	})
}

// The packed stored form holds exactly the entry and stat it was given,
// whatever their values (random, valid or not), and every shorter or
// longer record, or one with a byte changed in its counts, is refused or
// read without a crash.
func TestStoredFormRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 9))
	for i := range 3000 {
		f := randomEntry(r, fmt.Sprintf("d/f%d", i))
		var st *DiskStat
		if r.IntN(2) == 0 {
			d := randomStat(r, f)
			st = &d
		}
		v := appendStored(nil, &f, st)
		if v[0] != storedPacked {
			t.Fatalf("stored form starts with %#x; want %#x", v[0], storedPacked)
		}
		e, hashStored, err := decodePacked(f.Name, v)
		if err != nil {
			t.Fatalf("decoding %+v stored: %v", f, err)
		}
		want := storedEntry{File: f, Disk: st}
		if !reflect.DeepEqual(normalStored(e), normalStored(want)) {
			t.Fatalf("stored %+v / %+v, read %+v / %+v", f, st, e.File, e.Disk)
		}
		if want := f.FileHash == (Hash{}) || f.Type != TypeFile || f.FileHash != FileHashOf(f.Blocks); hashStored != want {
			t.Fatalf("%+v: decodePacked says the hash was stored: %v; want %v", f, hashStored, want)
		}
		for n := range len(v) {
			if _, _, err := decodePacked(f.Name, v[:n]); err == nil {
				t.Fatalf("%+v stored, cut to %d of %d bytes: decoded", f, n, len(v))
			}
		}
		if _, _, err := decodePacked(f.Name, append(v, 0)); err == nil {
			t.Fatalf("%+v stored, with a byte more: decoded", f)
		}
		bad := slices.Clone(v)
		j := 1 + r.IntN(len(bad)-1)
		bad[j] ^= byte(1 + r.IntN(255))
		decodePacked(f.Name, bad) // must not crash
	}
}

// normalStored is e with empty slices nil, as decoding leaves them.
func normalStored(e storedEntry) storedEntry {
	if len(e.File.Blocks) == 0 {
		e.File.Blocks = nil
	}
	if len(e.File.Version.Counters) == 0 {
		e.File.Version.Counters = nil
	}
	return e
}

// TestDBPutLocalEntries applies random sequences of changes to a Local and
// stores each step's changed entries with PutLocalEntries: the Local loaded
// after every step is the Local, and the stored records are byte for byte
// those a whole PutLocal of it stores.
func TestDBPutLocalEntries(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 0))
		inc := openTestDB(t)
		whole := openTestDB(t)
		// What is compared is what the transactions leave, not what
		// survives a crash: leave out the fsyncs.
		inc.b.NoSync, whole.b.NoSync = true, true
		l := NewLocal()
		for range r.IntN(50) {
			changeEntry(r, &l, fmt.Sprintf("e%02d", r.IntN(60)))
		}
		if err := inc.PutLocal("f", l); err != nil {
			t.Fatal(err)
		}
		for step := range 30 {
			var names []string
			for range r.IntN(8) {
				n := fmt.Sprintf("e%02d", r.IntN(60))
				changeEntry(r, &l, n)
				names = append(names, n)
			}
			if r.IntN(4) == 0 {
				// Unchanged and never stored names may be named too.
				names = append(names, fmt.Sprintf("e%02d", r.IntN(60)), "none")
			}
			if err := inc.PutLocalEntries("f", l, names); err != nil {
				t.Fatal(err)
			}
			got, err := inc.Local("f")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(stateOf(&l), stateOf(&got)) {
				t.Fatalf("seed %d step %d: loaded Local differs:\n%s", seed, step, cmp.Diff(stateOf(&l), stateOf(&got)))
			}
			if err := whole.PutLocal("f", l); err != nil {
				t.Fatal(err)
			}
			if want, got := records(t, whole, "f"), records(t, inc, "f"); !maps.EqualFunc(want, got, bytes.Equal) {
				t.Fatalf("seed %d step %d: records differ from a whole store:\n%s", seed, step, cmp.Diff(want, got))
			}
		}
	}
}

// TestDBPutLocalEntriesFirst stores entries of a folder never stored
// whole, never under another name.
func TestDBPutLocalEntriesFirst(t *testing.T) {
	db := openTestDB(t)
	r := rand.New(rand.NewPCG(7, 7))
	l := NewLocal()
	changeEntry(r, &l, "a")
	changeEntry(r, &l, "b")
	if err := db.PutLocalEntries("f", l, []string{"b", "a", "b"}); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Local("f"); err != nil || cmp.Diff(stateOf(&l), stateOf(&got)) != "" {
		t.Fatalf("Local = %v, %v; want %v", got, err, l)
	}
	// A Local holds each entry under its own name: the entry of a under
	// c is a's, and c is not stored.
	files := l.Snapshot()
	files["c"] = files["a"]
	bad := LocalOf(files, maps.Collect(l.Stats()))
	if _, ok := bad.Get("c"); ok || bad.Len() != 2 {
		t.Fatalf("LocalOf held entry a under c: %v", bad.Snapshot())
	}
	if err := db.PutLocalEntries("f", bad, []string{"b", "c"}); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Local("f"); err != nil || cmp.Diff(stateOf(&l), stateOf(&got)) != "" {
		t.Errorf("after a refused store, Local = %v, %v; want it unchanged", got, err)
	}
	if err := db.PutLocalEntries("", l, []string{"a"}); err == nil {
		t.Error("PutLocalEntries accepted an empty folder ID")
	}
	db.Close()
	if err := db.PutLocalEntries("f", l, []string{"a"}); err == nil {
		t.Error("PutLocalEntries on a closed database did not fail")
	}
}

func openTestDB(t testing.TB) *DB {
	db, err := OpenDB(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// changeEntry changes, adds or removes l's entry n at random: a file, a
// directory or a tombstone, with or without a disk stat.
func changeEntry(r *rand.Rand, l *Local, n string) {
	p := l.Entry(n)
	v := p.Version.Update(devA)
	if p.Version.IsZero() {
		v = Vector{}.Update(devB)
	}
	var fi FileInfo
	switch r.IntN(5) {
	case 0:
		l.Delete(n)
		return
	case 1:
		fi = FileInfo{Name: n, Type: TypeDir, Mode: 0o755, Version: v}
	case 2:
		fi = tombstone(FileInfo{Name: n, Type: TypeFile}, v)
	default:
		size := 1 + r.IntN(1<<20)
		blocks := []Block{{Offset: 0, Size: uint32(size), Hash: HashBytes(rnd(r.Uint64(), 16))}}
		fi = FileInfo{Name: n, Type: TypeFile, Size: int64(size), Mode: 0o644, ModTime: r.Int64(), Version: v,
			Blocks: blocks, FileHash: FileHashOf(blocks)}
	}
	l.Set(fi)
	if fi.Deleted || r.IntN(3) == 0 {
		l.DropStat(n)
	} else {
		l.SetStat(n, DiskStat{Size: fi.Size, ModTime: fi.ModTime, Inode: r.Uint64(), Racy: r.IntN(2) == 0})
	}
}

// records returns the stored local records of folder.
func records(t testing.TB, db *DB, folder string) map[string][]byte {
	out := map[string][]byte{}
	err := db.b.View(func(tx *bbolt.Tx) error {
		fb, err := folderBucket(tx, folder, false)
		if err != nil || fb == nil {
			return err
		}
		return fb.Bucket(bucketLocal).ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// BenchmarkPutLocal stores a folder's Local after one entry changed,
// whole (PutLocal) or that entry only (PutLocalEntries), for folders of
// 1k, 10k and 100k files. The fsyncs of a commit are left out: they
// measure the disk (shared, noisy), not the work of the store.
func BenchmarkPutLocal(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		r := rand.New(rand.NewPCG(uint64(n), 1))
		l := NewLocal()
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("dir%03d/file%06d.txt", i%500, i)
			changeEntry(r, &l, names[i])
		}
		for _, mode := range []string{"Whole", "Entries"} {
			b.Run(fmt.Sprintf("%s/%dk", mode, n/1000), func(b *testing.B) {
				db := openTestDB(b)
				db.b.NoSync = true
				if err := db.PutLocal("f", l); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					n := names[r.IntN(len(names))]
					changeEntry(r, &l, n)
					var err error
					if mode == "Whole" {
						err = db.PutLocal("f", l)
					} else {
						err = db.PutLocalEntries("f", l, []string{n})
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// A whole store of a Local that differs from the stored one in a few
// entries writes the pages of those, not of the whole folder, and still
// stores exactly that Local.
func TestPutLocalWritesWhatChanged(t *testing.T) {
	db, err := OpenDB(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := NewLocal()
	for i := range 20_000 {
		n := fmt.Sprintf("d%02d/f%06d", i%50, i)
		l.Set(FileInfo{Name: n, Type: TypeFile, Version: Vector{}.Update(devA), ModTime: int64(i), FileHash: FileHashOf(nil)})
		l.SetStat(n, DiskStat{Size: 0, ModTime: int64(i), Inode: uint64(i) + 1})
	}
	if err := db.PutLocal("f", l); err != nil {
		t.Fatal(err)
	}
	written := func() int64 { st := db.b.Stats(); return st.TxStats.GetWrite() }
	all := written()
	// One entry changed, one removed, one added.
	f := l.Entry("d07/f000007")
	f.Version = f.Version.Update(devB)
	l.Set(f)
	l.Delete("d08/f000008")
	l.Set(FileInfo{Name: "new", Type: TypeDir, Version: Vector{}.Update(devA)})
	before := written()
	if err := db.PutLocal("f", l); err != nil {
		t.Fatal(err)
	}
	if w := written() - before; w > all/20 {
		t.Errorf("storing 3 changed entries of 20,000 wrote %d pages; the whole folder took %d", w, all)
	}
	got, err := db.Local("f")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stateOf(&l), stateOf(&got)); diff != "" {
		t.Fatalf("stored Local differs:\n%s", diff)
	}
}

// A store of many entries commits at most maxTxEntries in a transaction,
// and stores them all.
func TestPutLocalBoundedTransactions(t *testing.T) {
	db, err := OpenDB(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	txid := func() int {
		var id int
		if err := db.b.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }); err != nil {
			t.Fatal(err)
		}
		return id
	}
	l := NewLocal()
	const n = 3*maxTxEntries + 10
	var names []string
	for i := range n {
		name := fmt.Sprintf("d%02d/f%06d", i%50, i)
		names = append(names, name)
		l.Set(FileInfo{Name: name, Type: TypeFile, Version: Vector{}.Update(devA), FileHash: FileHashOf(nil)})
	}
	for _, store := range []func() error{
		func() error { return db.PutLocal("f", l) },
		func() error { return db.PutLocalEntries("g", l, names) },
	} {
		before := txid()
		if err := store(); err != nil {
			t.Fatal(err)
		}
		if commits := txid() - before; commits < n/maxTxEntries+1 {
			t.Errorf("%d entries stored in %d transactions; want at most %d in each", n, commits, maxTxEntries)
		}
	}
	for _, folder := range []string{"f", "g"} {
		got, err := db.Local(folder)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(stateOf(&l), stateOf(&got)); diff != "" {
			t.Fatalf("stored Local of %s differs:\n%s", folder, diff)
		}
	}
}
