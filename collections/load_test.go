package collections_test

import (
	"errors"
	"testing"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
)

// persisted commits the mixed history to a replica that appends every
// stored certified update to an in-memory Storage, as a server does.
func persisted(t *testing.T) (*history, *ct.Storage) {
	t.Helper()
	h := mixedHistory(t)
	st := h.d.State(t)
	store := ct.NewStorage()
	for _, v := range h.ver {
		if got := st.Apply(v); got.Store {
			c := v.Certified()
			if err := store.Append(c.Update().Collection, c.Marshal()); err != nil {
				t.Fatal(err)
			}
		}
	}
	ct.AssertSameDigests(t, h.ref, st)
	return h, store
}

func loadAll(t *testing.T, d *ct.Domain, store collections.Storage) (*collections.State, error) {
	t.Helper()
	st := d.State(t)
	for _, k := range collections.Kinds {
		if _, err := st.Load(store, k); err != nil {
			return st, err
		}
	}
	return st, nil
}

func TestLoad(t *testing.T) {
	h, store := persisted(t)
	st, err := loadAll(t, h.d, store)
	if err != nil {
		t.Fatal(err)
	}
	ct.AssertSameDigests(t, h.ref, st)

	// Compacted to snapshots, the files load to the same state.
	for _, k := range collections.Kinds {
		if err := store.Replace(k, st.Snapshot(k)); err != nil {
			t.Fatal(err)
		}
	}
	again, err := loadAll(t, h.d, store)
	if err != nil {
		t.Fatal(err)
	}
	ct.AssertSameDigests(t, h.ref, again)
	for _, k := range collections.Kinds {
		if got, want := len(again.Snapshot(k)), again.Retained(k); got != want {
			t.Errorf("Snapshot(%s) has %d records; Retained says %d", k, got, want)
		}
	}
}

// TestLoadCorrupt: a flipped byte anywhere in a record yields a
// DataFileError naming the file and the record's offset, and nothing from
// that file is applied.
func TestLoadCorrupt(t *testing.T) {
	h, store := persisted(t)
	base, err := loadAll(t, h.d, store)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range collections.Kinds {
		l, err := store.Load(k)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range l.Entries {
			if testing.Short() && i > 1 {
				break
			}
			for _, at := range []int{0, len(e.Data) / 3, len(e.Data) / 2, len(e.Data) - 1} {
				bad := ct.NewStorage()
				for _, kk := range collections.Kinds {
					bad.SetBytes(kk, store.Bytes(kk))
				}
				bad.Corrupt(k, e.Offset+4+int64(at)) // past the 4-byte length
				st := h.d.State(t)
				for _, kk := range collections.Kinds[:k-1] {
					if _, err := st.Load(bad, kk); err != nil {
						t.Fatal(err)
					}
				}
				before := st.Digest(k)
				before2 := st.Summary()
				_, err := st.Load(bad, k)
				var dfe *collections.DataFileError
				if !errors.As(err, &dfe) || !errors.Is(err, collections.ErrCorruptDataFile) {
					t.Fatalf("%s record %d byte %d: Load = %v; want *DataFileError", k, i, at, err)
				}
				if dfe.File != ct.FileName(k) || dfe.Offset != e.Offset {
					t.Errorf("%s record %d: DataFileError names %s at %d; want %s at %d", k, i, dfe.File, dfe.Offset, ct.FileName(k), e.Offset)
				}
				if st.Digest(k) != before || len(st.Summary()[k]) != len(before2[k]) {
					t.Fatalf("%s record %d: state changed by a file that failed to load", k, i)
				}
			}
		}
		_ = base
	}
}

// TestLoadTruncated: a file cut at every byte offset loads as a valid
// prefix (with TornAt set when a record was cut) or fails with a
// DataFileError; never a panic, never more than was written. State.Load
// runs once for each distinct prefix of whole records.
func TestLoadTruncated(t *testing.T) {
	h, store := persisted(t)
	k := collections.Catalog
	full := store.Bytes(k)
	l, _ := store.Load(k)
	base := h.d.State(t)
	if _, err := base.Load(store, collections.Domain); err != nil {
		t.Fatal(err)
	}
	loaded := map[int]bool{}
	for size := 0; size <= len(full); size++ {
		cut := ct.NewStorage()
		cut.SetBytes(k, full[:size])
		whole := 0
		for _, e := range l.Entries {
			if e.Offset+4+int64(len(e.Data)) <= int64(size) {
				whole++
			}
		}
		cl, err := cut.Load(k)
		if err != nil {
			t.Fatalf("size %d: storage Load = %v", size, err)
		}
		if torn := cl.TornAt >= 0; len(cl.Entries) != whole || torn != (size < len(full) && !isBoundary(l, size)) {
			t.Fatalf("size %d: %d entries, TornAt %d; want %d entries", size, len(cl.Entries), cl.TornAt, whole)
		}
		if loaded[whole] && size != len(full) {
			continue
		}
		loaded[whole] = true
		st := base.Clone()
		res, err := st.Load(cut, k)
		if err != nil {
			var dfe *collections.DataFileError
			if !errors.As(err, &dfe) {
				t.Fatalf("size %d: Load = %v; want nil or *DataFileError", size, err)
			}
			continue
		}
		if res.Records != whole {
			t.Errorf("size %d: loaded %d records; want %d", size, res.Records, whole)
		}
	}
	if len(loaded) != len(l.Entries)+1 {
		t.Errorf("loaded %d distinct prefixes; want %d", len(loaded), len(l.Entries)+1)
	}
}

func isBoundary(l collections.Loaded, size int) bool {
	for _, e := range l.Entries {
		if e.Offset == int64(size) {
			return true
		}
	}
	return false
}

// TestLoadWrongCollection: a record of another collection in a data file
// is refused.
func TestLoadWrongCollection(t *testing.T) {
	h, store := persisted(t)
	store.SetBytes(collections.Report, store.Bytes(collections.Catalog))
	st := h.d.State(t)
	st.Load(store, collections.Domain)
	st.Load(store, collections.Catalog)
	if _, err := st.Load(store, collections.Report); !errors.Is(err, collections.ErrCorruptDataFile) || !errors.Is(err, collections.ErrMalformed) {
		t.Fatalf("Load(catalog records as report) = %v", err)
	}
}

// TestLoadAfterUserMove: a user moved to another home server after their
// folder was created does not make the compacted Catalog unloadable.
func TestLoadAfterUserMove(t *testing.T) {
	d := ct.NewTestDomain(t, 2)
	st := d.State(t)
	store := ct.NewStorage()
	keep := func(c collections.Certified) {
		store.Append(c.Update().Collection, c.Marshal())
	}
	keep(d.Commit(t, st, "s1", mustPut(collections.User{Name: "ann", HomeServer: ct.ID("s2").String()})))
	keep(d.Commit(t, st, "s2", mustPut(folder("f1", "ann", "s2"))))
	keep(d.Commit(t, st, "s1", mustPut(collections.User{Name: "ann", HomeServer: ct.ID("s1").String()})))
	for _, k := range collections.Kinds {
		store.Replace(k, st.Snapshot(k))
	}
	again, err := loadAll(t, d, store)
	if err != nil {
		t.Fatal(err)
	}
	ct.AssertSameDigests(t, st, again)
}

func TestPersistence(t *testing.T) {
	p := collections.Persistence{MinAppends: 3}
	for range 3 {
		p.Appended(collections.Catalog)
	}
	if p.ShouldCompact(collections.Catalog, 5) {
		t.Error("compact with 3 appends and 5 records")
	}
	if !p.ShouldCompact(collections.Catalog, 2) {
		t.Error("no compact with 3 appends and 2 records")
	}
	if p.ShouldCompact(collections.Domain, 0) {
		t.Error("compact of an untouched file")
	}
	p.Compacted(collections.Catalog)
	if p.ShouldCompact(collections.Catalog, 0) {
		t.Error("compact right after compaction")
	}
}

// A server removed from the chain leaves its history valid: its folders and
// reports, and the master certifications it made, still load.
func TestLoadAfterServerRemoved(t *testing.T) {
	d := ct.NewTestDomain(t, 3)
	st := d.State(t)
	store := ct.NewStorage()
	keep := func(c collections.Certified) {
		store.Append(c.Update().Collection, c.Marshal())
	}
	keep(d.Commit(t, st, "s1", mustPut(collections.User{Name: "ann", HomeServer: ct.ID("s3").String()})))
	keep(d.Commit(t, st, "s3", mustPut(folder("f1", "ann", "s3"))))
	keep(d.Commit(t, st, "s1", mustPut(collections.User{Name: "ann", HomeServer: ct.ID("s2").String()})))
	keep(d.Commit(t, st, "s1", mustPut(collections.Chain{Servers: []string{ct.ID("s1").String(), ct.ID("s2").String(), ct.ID("spare").String()}})))
	if st.IsServer(ct.ID("s3")) || !st.WasServer(ct.ID("s3")) {
		t.Fatalf("after removal: IsServer(s3) = %v, WasServer(s3) = %v; want false, true", st.IsServer(ct.ID("s3")), st.WasServer(ct.ID("s3")))
	}
	for _, k := range collections.Kinds {
		store.Replace(k, st.Snapshot(k))
	}
	again, err := loadAll(t, d, store)
	if err != nil {
		t.Fatalf("loading after s3 left the chain: %v", err)
	}
	ct.AssertSameDigests(t, st, again)
}
