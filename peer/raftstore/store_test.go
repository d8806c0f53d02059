package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// ent is the entry at index of term, with data naming both.
func ent(index, term uint64) *raftpb.Entry {
	return &raftpb.Entry{
		Index: new(index),
		Term:  new(term),
		Type:  new(raftpb.EntryNormal),
		Data:  fmt.Appendf(nil, "entry %d of term %d", index, term),
	}
}

// ents is the entries from through to, all of term.
func ents(from, to, term uint64) []*raftpb.Entry {
	var es []*raftpb.Entry
	for i := from; i <= to; i++ {
		es = append(es, ent(i, term))
	}
	return es
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

func snapshot(index, term uint64) *raftpb.Snapshot {
	return &raftpb.Snapshot{
		Data: fmt.Appendf(nil, "state at %d", index),
		Metadata: &raftpb.SnapshotMetadata{
			Index:     new(index),
			Term:      new(term),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		},
	}
}

// ids renders entries as index/term pairs, for comparing logs.
func ids(es []*raftpb.Entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%d/%d ", e.GetIndex(), e.GetTerm())
	}
	return strings.TrimSpace(b.String())
}

func openStore(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "raft.db")
	return openStore(t, path), path
}

// reopen closes s and opens its file again.
func reopen(t *testing.T, s *Store, path string) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return openStore(t, path)
}

func mustSave(t *testing.T, s *Store, hs *raftpb.HardState, es []*raftpb.Entry, snap *raftpb.Snapshot) {
	t.Helper()
	if err := s.Save(hs, es, snap); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

// stored is what Load returns, for comparing.
type stored struct {
	hs   *raftpb.HardState
	snap *raftpb.Snapshot
	ents []*raftpb.Entry
}

func load(t *testing.T, s *Store) stored {
	t.Helper()
	hs, snap, es, err := s.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return stored{hs, snap, es}
}

// diff describes how got differs from want, "" if it does not.
func (want stored) diff(got stored) string {
	var d []string
	if want.hs == nil {
		want.hs = &raftpb.HardState{}
	}
	if !proto.Equal(got.hs, want.hs) {
		d = append(d, fmt.Sprintf("hard state %v, want %v", got.hs, want.hs))
	}
	if (got.snap == nil) != (want.snap == nil) || !proto.Equal(got.snap, want.snap) {
		d = append(d, fmt.Sprintf("snapshot %v, want %v", got.snap, want.snap))
	}
	if !slices.EqualFunc(got.ents, want.ents, func(a, b *raftpb.Entry) bool { return proto.Equal(a, b) }) {
		d = append(d, fmt.Sprintf("entries [%s], want [%s]", ids(got.ents), ids(want.ents)))
	}
	return strings.Join(d, "; ")
}

// TestRoundTrip saves and checks that Load gives back the same before and
// after the file is closed and opened again, and that what it gave stays
// intact once the file is closed.
func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		save func(t *testing.T, s *Store)
		want stored
	}{
		{
			name: "new file",
			save: func(*testing.T, *Store) {},
		},
		{
			name: "hard state only",
			save: func(t *testing.T, s *Store) { mustSave(t, s, hardState(3, 2, 0), nil, nil) },
			want: stored{hs: hardState(3, 2, 0)},
		},
		{
			name: "entries only",
			save: func(t *testing.T, s *Store) { mustSave(t, s, nil, ents(1, 4, 1), nil) },
			want: stored{ents: ents(1, 4, 1)},
		},
		{
			name: "snapshot, entries and hard state in one save",
			save: func(t *testing.T, s *Store) {
				mustSave(t, s, hardState(2, 1, 12), ents(11, 13, 2), snapshot(10, 2))
			},
			want: stored{hs: hardState(2, 1, 12), snap: snapshot(10, 2), ents: ents(11, 13, 2)},
		},
		{
			name: "several saves, the latest hard state wins and empty ones change nothing",
			save: func(t *testing.T, s *Store) {
				mustSave(t, s, hardState(1, 1, 0), ents(1, 2, 1), nil)
				mustSave(t, s, hardState(1, 1, 2), ents(3, 3, 1), nil)
				mustSave(t, s, &raftpb.HardState{}, nil, &raftpb.Snapshot{})
				mustSave(t, s, nil, ents(4, 5, 1), nil)
				mustSave(t, s, nil, nil, nil)
			},
			want: stored{hs: hardState(1, 1, 2), ents: ents(1, 5, 1)},
		},
		{
			name: "large entries",
			save: func(t *testing.T, s *Store) {
				big := ents(1, 3, 1)
				for _, e := range big {
					e.Data = bytes.Repeat(e.Data, 20000)
				}
				mustSave(t, s, nil, big, nil)
			},
			want: stored{ents: func() []*raftpb.Entry {
				big := ents(1, 3, 1)
				for _, e := range big {
					e.Data = bytes.Repeat(e.Data, 20000)
				}
				return big
			}()},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, path := newStore(t)
			tt.save(t, s)
			if d := tt.want.diff(load(t, s)); d != "" {
				t.Errorf("before reopening: %s", d)
			}
			s = reopen(t, s, path)
			got := load(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if d := tt.want.diff(got); d != "" {
				t.Errorf("after reopening: %s", d)
			}
		})
	}
}

// TestSaveTruncates checks raft's log truncation: an entry saved at an index
// already stored replaces it and drops the stored entries after it.
func TestSaveTruncates(t *testing.T) {
	tests := []struct {
		name   string
		snapAt uint64 // if not 0, a compaction snapshot of term 1 before the save
		save   []*raftpb.Entry
		want   string
	}{
		{"append after the last", 0, ents(6, 7, 1), "1/1 2/1 3/1 4/1 5/1 6/1 7/1"},
		{"overwrite in the middle", 0, ents(3, 3, 2), "1/1 2/1 3/2"},
		{"overwrite the first", 0, ents(1, 1, 2), "1/2"},
		{"overwrite the last and go on", 0, ents(5, 7, 2), "1/1 2/1 3/1 4/1 5/2 6/2 7/2"},
		{"overwrite with a shorter run", 0, ents(2, 3, 3), "1/1 2/3 3/3"},
		{"the same entries again", 0, ents(4, 5, 1), "1/1 2/1 3/1 4/1 5/1"},
		{"entries under the snapshot are skipped", 3, append(ents(2, 3, 1), ent(4, 2)), "4/2"},
		{"entries all under the snapshot change nothing", 3, ents(1, 3, 1), "4/1 5/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, path := newStore(t)
			mustSave(t, s, hardState(1, 1, 1), ents(1, 5, 1), nil)
			if tt.snapAt != 0 {
				if err := s.SaveSnapshot(snapshot(tt.snapAt, 1)); err != nil {
					t.Fatal(err)
				}
			}
			mustSave(t, s, nil, tt.save, nil)
			if got := ids(load(t, s).ents); got != tt.want {
				t.Errorf("entries after saving [%s]: [%s], want [%s]", ids(tt.save), got, tt.want)
			}
			s = reopen(t, s, path)
			if got := ids(load(t, s).ents); got != tt.want {
				t.Errorf("entries after reopening: [%s], want [%s]", got, tt.want)
			}
		})
	}
}

// TestSaveRefusesBadEntries checks that entries that would leave a hole in
// the log are refused and that nothing of the refused Save is stored.
func TestSaveRefusesBadEntries(t *testing.T) {
	tests := []struct {
		name string
		snap *raftpb.Snapshot // saved in the same call, before the entries
		save []*raftpb.Entry
		want string
	}{
		{"a gap after the last", nil, ents(7, 8, 1), "entry 7 would leave a gap after the last stored index 5"},
		{"a gap after the leader's snapshot", snapshot(7, 2), ents(9, 10, 2), "entry 9 would leave a gap after the last stored index 7"},
		{"not contiguous", nil, []*raftpb.Entry{ent(6, 1), ent(8, 1)}, "not contiguous: 8 follows 6"},
		{"out of order", nil, []*raftpb.Entry{ent(4, 1), ent(3, 1)}, "not contiguous: 3 follows 4"},
		{"a nil entry", snapshot(7, 2), []*raftpb.Entry{ent(8, 2), nil}, "entry 2 of 2 to save is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			mustSave(t, s, hardState(1, 1, 1), ents(1, 5, 1), nil)
			before := load(t, s)
			err := s.Save(hardState(2, 2, 5), tt.save, tt.snap)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Save([%s]) = %v, want an error containing %q", ids(tt.save), err, tt.want)
			}
			if d := before.diff(load(t, s)); d != "" {
				t.Errorf("the refused Save changed the log: %s", d)
			}
		})
	}
	t.Run("a first entry other than 1 on an empty log", func(t *testing.T) {
		s, _ := newStore(t)
		if err := s.Save(nil, ents(2, 3, 1), nil); err == nil || !strings.Contains(err.Error(), "gap after the last stored index 0") {
			t.Fatalf("Save = %v, want a gap error", err)
		}
	})
}

// TestSnapshotDropsEntries checks which entries a snapshot drops: those at
// and below its index for a compaction (SaveSnapshot), all of them for a
// snapshot received from the leader (Save), as MemoryStorage does.
func TestSnapshotDropsEntries(t *testing.T) {
	tests := []struct {
		name string
		save func(s *Store) error
		want stored
	}{
		{
			name: "compaction in the middle",
			save: func(s *Store) error { return s.SaveSnapshot(snapshot(4, 1)) },
			want: stored{snap: snapshot(4, 1), ents: append(ents(5, 5, 1), ents(6, 10, 2)...)},
		},
		{
			name: "compaction at the last entry",
			save: func(s *Store) error { return s.SaveSnapshot(snapshot(10, 2)) },
			want: stored{snap: snapshot(10, 2)},
		},
		{
			name: "two compactions",
			save: func(s *Store) error {
				if err := s.SaveSnapshot(snapshot(3, 1)); err != nil {
					return err
				}
				return s.SaveSnapshot(snapshot(7, 2))
			},
			want: stored{snap: snapshot(7, 2), ents: ents(8, 10, 2)},
		},
		{
			name: "compaction past the last entry",
			save: func(s *Store) error { return s.SaveSnapshot(snapshot(12, 2)) },
			want: stored{snap: snapshot(12, 2)},
		},
		{
			name: "leader's snapshot within the log replaces it, entries after it follow",
			save: func(s *Store) error { return s.Save(hardState(3, 0, 7), ents(8, 9, 3), snapshot(7, 3)) },
			want: stored{hs: hardState(3, 0, 7), snap: snapshot(7, 3), ents: ents(8, 9, 3)},
		},
		{
			name: "leader's snapshot past the log",
			save: func(s *Store) error { return s.Save(hardState(3, 0, 20), nil, snapshot(20, 3)) },
			want: stored{hs: hardState(3, 0, 20), snap: snapshot(20, 3)},
		},
		{
			name: "leader's snapshot after a compaction",
			save: func(s *Store) error {
				if err := s.SaveSnapshot(snapshot(5, 1)); err != nil {
					return err
				}
				return s.Save(nil, nil, snapshot(8, 3))
			},
			want: stored{snap: snapshot(8, 3)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, path := newStore(t)
			mustSave(t, s, nil, append(ents(1, 5, 1), ents(6, 10, 2)...), nil)
			if err := tt.save(s); err != nil {
				t.Fatal(err)
			}
			if d := tt.want.diff(load(t, s)); d != "" {
				t.Error(d)
			}
			// Load skips entries at or below the snapshot: look at the file.
			var want []uint64
			for _, e := range tt.want.ents {
				want = append(want, e.GetIndex())
			}
			if got := storedIndexes(t, s); !slices.Equal(got, want) {
				t.Errorf("the file holds entries %v, want %v", got, want)
			}
			s = reopen(t, s, path)
			if d := tt.want.diff(load(t, s)); d != "" {
				t.Errorf("after reopening: %s", d)
			}
		})
	}
}

// storedIndexes lists the keys of the entries bucket.
func storedIndexes(t *testing.T, s *Store) []uint64 {
	t.Helper()
	var is []uint64
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketEntries).ForEach(func(k, _ []byte) error {
			i, ok := keyIndex(k)
			if !ok {
				return fmt.Errorf("key %x is not an index", k)
			}
			is = append(is, i)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// TestSnapshotRefused checks that a snapshot older than the stored one, or
// one that does not match the log, is refused and leaves the log as it was.
func TestSnapshotRefused(t *testing.T) {
	tests := []struct {
		name      string
		save      func(s *Store) error
		want      string // "" for accepted
		outOfDate bool   // the error wraps raft.ErrSnapOutOfDate
	}{
		{
			name:      "older compaction",
			save:      func(s *Store) error { return s.SaveSnapshot(snapshot(3, 1)) },
			want:      "snapshot at index 3 is older than the stored one at 5",
			outOfDate: true,
		},
		{
			name:      "older snapshot from the leader",
			save:      func(s *Store) error { return s.Save(hardState(9, 9, 9), ents(4, 4, 9), snapshot(3, 1)) },
			want:      "snapshot at index 3 does not follow the stored one at 5",
			outOfDate: true,
		},
		{
			name:      "snapshot from the leader at the stored index",
			save:      func(s *Store) error { return s.Save(nil, nil, snapshot(5, 2)) },
			want:      "snapshot at index 5 does not follow the stored one at 5",
			outOfDate: true,
		},
		{
			name: "compaction with another term than the entry's",
			save: func(s *Store) error { return s.SaveSnapshot(snapshot(7, 3)) },
			want: "snapshot at index 7 has term 3, the log's entry there 2",
		},
		{
			name: "compaction at the stored index with another term",
			save: func(s *Store) error { return s.SaveSnapshot(snapshot(5, 1)) },
			want: "snapshot at index 5 has term 1, the stored one at that index 2",
		},
		{
			name: "empty compaction",
			save: func(s *Store) error { return s.SaveSnapshot(&raftpb.Snapshot{Data: []byte("x")}) },
			want: "refusing to store an empty snapshot",
		},
		{
			name: "nil compaction",
			save: func(s *Store) error { return s.SaveSnapshot(nil) },
			want: "refusing to store an empty snapshot",
		},
		{
			name: "compaction at the stored index and term is accepted",
			save: func(s *Store) error { return s.SaveSnapshot(snapshot(5, 2)) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			mustSave(t, s, hardState(2, 1, 8), ents(1, 8, 2), nil)
			if err := s.SaveSnapshot(snapshot(5, 2)); err != nil {
				t.Fatal(err)
			}
			before := load(t, s)
			err := tt.save(s)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want it accepted", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if got := errors.Is(err, raft.ErrSnapOutOfDate); got != tt.outOfDate {
				t.Errorf("errors.Is(%v, raft.ErrSnapOutOfDate) = %v, want %v", err, got, tt.outOfDate)
			}
			if d := before.diff(load(t, s)); d != "" {
				t.Errorf("the refused snapshot changed the log: %s", d)
			}
		})
	}
}

// TestLoadReportsDamage checks that a damaged record is reported with the
// file and what was being read, and that Restore passes the error on.
func TestLoadReportsDamage(t *testing.T) {
	garbage := []byte{0xff} // a truncated varint
	tests := []struct {
		name   string
		change func(tx *bbolt.Tx) error
		want   string
	}{
		{"an entry that does not decode", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketEntries).Put(indexKey(7), garbage)
		}, "decoding entry 7"},
		{"a missing entry", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketEntries).Delete(indexKey(7))
		}, "entry 7 is missing (the next stored is 8)"},
		{"an entry stored under another index", func(tx *bbolt.Tx) error {
			v, err := proto.Marshal(ent(9, 1))
			if err != nil {
				return err
			}
			return tx.Bucket(bucketEntries).Put(indexKey(7), v)
		}, "entry stored at 7 has index 9"},
		{"a hard state that does not decode", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keyHardState, garbage)
		}, "decoding the hard state"},
		{"a snapshot that does not decode", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keySnapshot, garbage)
		}, "decoding the snapshot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, path := newStore(t)
			mustSave(t, s, hardState(1, 1, 8), ents(1, 8, 1), nil)
			if err := s.SaveSnapshot(snapshot(4, 1)); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tamper(t, path, tt.change)

			s = openStore(t, path)
			_, _, _, err := s.Load()
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("Load = %v, want an error naming %s and containing %q", err, path, tt.want)
			}
			if _, rerr := s.Restore(); rerr == nil || rerr.Error() != err.Error() {
				t.Errorf("Restore = %v, want Load's error", rerr)
			}
		})
	}
}

// TestSnapshotMetadata checks that the metadata Save reads from the stored
// snapshot without decoding its data is what a full decode gives.
func TestSnapshotMetadata(t *testing.T) {
	marshal := func(snaps ...*raftpb.Snapshot) []byte {
		var v []byte
		for _, sn := range snaps {
			b, err := proto.Marshal(sn)
			if err != nil {
				t.Fatal(err)
			}
			v = append(v, b...) // concatenated messages merge
		}
		return v
	}
	big := snapshot(40, 3)
	big.Data = bytes.Repeat([]byte("state "), 1<<20)
	tests := []struct {
		name    string
		stored  []byte // nil for no snapshot
		wantErr bool
	}{
		{name: "none"},
		{name: "small", stored: marshal(snapshot(4, 1))},
		{name: "large data", stored: marshal(big)},
		{name: "no metadata", stored: marshal(&raftpb.Snapshot{Data: []byte("x")})},
		{name: "metadata twice", stored: marshal(snapshot(4, 1), &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(9))}})},
		{name: "damaged", stored: []byte{0xff}, wantErr: true},
		{name: "truncated", stored: marshal(big)[:1000], wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			if tt.stored != nil {
				err := s.update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySnapshot, tt.stored) })
				if err != nil {
					t.Fatal(err)
				}
			}
			var got *raftpb.SnapshotMetadata
			err := s.view(func(tx *bbolt.Tx) (err error) {
				got, err = s.snapshotMetadata(tx.Bucket(bucketMeta))
				return err
			})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "decoding the snapshot") {
					t.Errorf("snapshotMetadata = %v, %v; want a decoding error", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			full := &raftpb.Snapshot{}
			if err := proto.Unmarshal(tt.stored, full); err != nil {
				t.Fatal(err)
			}
			want := full.GetMetadata()
			if want == nil {
				want = &raftpb.SnapshotMetadata{}
			}
			if !proto.Equal(got, want) {
				t.Errorf("snapshotMetadata = %v, want %v", got, want)
			}
		})
	}
}

// quietLogger keeps raft's log lines out of the test output.
var quietLogger = &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}

// TestRestore checks the MemoryStorage that Restore builds, and that raft
// restarts on it with the stored hard state.
func TestRestore(t *testing.T) {
	tests := []struct {
		name        string
		save        func(t *testing.T, s *Store)
		first, last uint64
		terms       map[uint64]uint64 // index -> term
		hs          *raftpb.HardState
		voters      []uint64
		snapIndex   uint64
		entries     string // of [first, last+1)
		raftTerm    uint64
		raftCommit  uint64
		raftApplied uint64
	}{
		{
			name:  "new file",
			save:  func(*testing.T, *Store) {},
			first: 1, last: 0,
			terms: map[uint64]uint64{0: 0},
			hs:    &raftpb.HardState{},
		},
		{
			name: "entries and hard state",
			save: func(t *testing.T, s *Store) {
				mustSave(t, s, hardState(2, 1, 3), append(ents(1, 2, 1), ents(3, 4, 2)...), nil)
			},
			first: 1, last: 4,
			terms:    map[uint64]uint64{0: 0, 1: 1, 2: 1, 3: 2, 4: 2},
			hs:       hardState(2, 1, 3),
			entries:  "1/1 2/1 3/2 4/2",
			raftTerm: 2, raftCommit: 3,
		},
		{
			name: "snapshot, entries and hard state",
			save: func(t *testing.T, s *Store) {
				mustSave(t, s, hardState(3, 2, 8), append(ents(1, 7, 2), ents(8, 9, 3)...), nil)
				if err := s.SaveSnapshot(snapshot(5, 2)); err != nil {
					t.Fatal(err)
				}
			},
			first: 6, last: 9,
			terms:     map[uint64]uint64{5: 2, 6: 2, 7: 2, 8: 3, 9: 3},
			hs:        hardState(3, 2, 8),
			voters:    []uint64{1, 2, 3},
			snapIndex: 5,
			entries:   "6/2 7/2 8/3 9/3",
			raftTerm:  3, raftCommit: 8, raftApplied: 5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, path := newStore(t)
			tt.save(t, s)
			s = reopen(t, s, path)
			ms, err := s.Restore()
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := ms.FirstIndex(); got != tt.first {
				t.Errorf("FirstIndex = %d, want %d", got, tt.first)
			}
			if got, _ := ms.LastIndex(); got != tt.last {
				t.Errorf("LastIndex = %d, want %d", got, tt.last)
			}
			for i, want := range tt.terms {
				if got, err := ms.Term(i); err != nil || got != want {
					t.Errorf("Term(%d) = %d, %v, want %d", i, got, err, want)
				}
			}
			if tt.first > 1 {
				if _, err := ms.Term(tt.first - 2); !errors.Is(err, raft.ErrCompacted) {
					t.Errorf("Term(%d) error = %v, want ErrCompacted", tt.first-2, err)
				}
			}
			if tt.last >= tt.first {
				es, err := ms.Entries(tt.first, tt.last+1, 1<<30)
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(es); got != tt.entries {
					t.Errorf("Entries = [%s], want [%s]", got, tt.entries)
				}
				want := load(t, s).ents
				if !slices.EqualFunc(es, want, func(a, b *raftpb.Entry) bool { return proto.Equal(a, b) }) {
					t.Errorf("Entries differ from Load's")
				}
			}
			hs, cs, err := ms.InitialState()
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(hs, tt.hs) {
				t.Errorf("InitialState hard state = %v, want %v", hs, tt.hs)
			}
			if !slices.Equal(cs.GetVoters(), tt.voters) {
				t.Errorf("InitialState voters = %v, want %v", cs.GetVoters(), tt.voters)
			}
			snap, err := ms.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if got := snap.GetMetadata().GetIndex(); got != tt.snapIndex {
				t.Errorf("Snapshot index = %d, want %d", got, tt.snapIndex)
			}

			rn, err := raft.NewRawNode(&raft.Config{
				ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: ms,
				MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, Applied: tt.raftApplied,
				Logger: quietLogger,
			})
			if err != nil {
				t.Fatalf("raft does not start on the restored storage: %v", err)
			}
			st := rn.Status()
			if st.GetTerm() != tt.raftTerm || st.GetCommit() != tt.raftCommit {
				t.Errorf("raft restarted at term %d commit %d, want term %d commit %d",
					st.GetTerm(), st.GetCommit(), tt.raftTerm, tt.raftCommit)
			}
		})
	}
}

// TestFormatVersion checks that a file of another format version, or not a
// raft log at all, is refused with an error naming it and what to do.
func TestFormatVersion(t *testing.T) {
	setVersion := func(v []byte) func(tx *bbolt.Tx) error {
		return func(tx *bbolt.Tx) error {
			if v == nil {
				return tx.Bucket(bucketMeta).Delete(keyVersion)
			}
			return tx.Bucket(bucketMeta).Put(keyVersion, v)
		}
	}
	tests := []struct {
		name   string
		raw    bool // a bbolt file not made by Open
		change func(tx *bbolt.Tx) error
		want   []string // substrings of the error; none for accepted
	}{
		{"version 1", false, setVersion(indexKey(1)), nil},
		{"a newer version", false, setVersion(indexKey(2)),
			[]string{"format version 2 is newer than this baton reads (version 1)", "run the baton release that wrote it"}},
		{"version 0", false, setVersion(indexKey(0)),
			[]string{"format version 0 was never written by baton", "remove this server from the chain"}},
		{"a version of the wrong length", false, setVersion([]byte{1}),
			[]string{"format version is 1 bytes long", "damaged"}},
		{"no version", false, setVersion(nil),
			[]string{"no format version", "remove this server from the chain"}},
		{"another program's file", true, func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucket([]byte("folders"))
			return err
		}, []string{"holds other data", "give the server a path of its own"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "raft.db")
			if !tt.raw {
				s, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				mustSave(t, s, hardState(1, 1, 1), ents(1, 1, 1), nil)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			tamper(t, path, tt.change)

			s, err := Open(path)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Open = %v, want it accepted", err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("Open accepted the file")
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestOpenInUse checks that a file another Store holds is refused within the
// lock timeout with a clear error, and opens once the other Store closes it.
func TestOpenInUse(t *testing.T) {
	s, path := newStore(t)
	mustSave(t, s, hardState(1, 1, 0), nil, nil)

	type result struct {
		s   *Store
		err error
	}
	opened := make(chan result, 1)
	start := time.Now()
	go func() {
		s2, err := Open(path)
		opened <- result{s2, err}
	}()
	var err error
	select {
	case r := <-opened:
		if r.err == nil {
			r.s.Close()
			t.Fatal("a second Open of a held file succeeded")
		}
		err = r.err
	case <-time.After(openTimeout + 5*time.Second):
		t.Fatal("a second Open of a held file still waits after", openTimeout+5*time.Second)
	}
	elapsed := time.Since(start)
	if !strings.Contains(err.Error(), "log file is in use by another process") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file and say it is in use", err)
	}
	if !errors.Is(err, bolterrors.ErrTimeout) {
		t.Errorf("errors.Is(%v, bbolt ErrTimeout) = false", err)
	}
	if elapsed < openTimeout/2 {
		t.Errorf("Open gave up after %v, want it to wait about %v for the lock", elapsed, openTimeout)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, path)
	if d := (stored{hs: hardState(1, 1, 0)}).diff(load(t, s2)); d != "" {
		t.Error(d)
	}
}

// TestOpenCreatesParents checks that Open makes the missing directories and
// a file only the owner can read, and leaves bbolt syncing every commit.
func TestOpenCreatesParents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "raft.db")
	s := openStore(t, path)
	if s.db.NoSync {
		t.Error("the file is opened with NoSync: Save would not be durable")
	}
	if runtime.GOOS == "windows" {
		return // no Unix permissions
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %v, want 0600", perm)
	}
}

// TestClosed checks that every method reports ErrClosed after Close, and
// that Close may be called again.
func TestClosed(t *testing.T) {
	s, _ := newStore(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Load":         func() error { _, _, _, err := s.Load(); return err },
		"Save":         func() error { return s.Save(hardState(1, 1, 0), ents(1, 1, 1), nil) },
		"empty Save":   func() error { return s.Save(nil, nil, nil) },
		"SaveSnapshot": func() error { return s.SaveSnapshot(snapshot(1, 1)) },
		"Restore":      func() error { _, err := s.Restore(); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestConcurrentUse saves from one goroutine while others load, and closes
// while they may still run; every Load sees a contiguous log.
func TestConcurrentUse(t *testing.T) {
	s, _ := newStore(t)
	const n = 50
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := uint64(1); i <= n; i++ {
			if err := s.Save(hardState(1, 1, i-1), ents(i, i, 1), nil); err != nil {
				t.Errorf("Save %d: %v", i, err)
				return
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for {
				_, _, es, err := s.Load()
				if err != nil {
					t.Errorf("Load: %v", err)
					return
				}
				for k, e := range es {
					if e.GetIndex() != uint64(k+1) {
						t.Errorf("Load gave entry %d at position %d", e.GetIndex(), k)
						return
					}
				}
				if len(es) == n {
					return
				}
			}
		})
	}
	wg.Wait()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, _, err := s.Load(); err != nil {
				if !errors.Is(err, ErrClosed) {
					t.Errorf("Load during Close: %v", err)
				}
				return
			}
		}
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
}

// BenchmarkSave measures the per-commit cost: one 300-byte entry and a hard
// state per fsynced Save.
func BenchmarkSave(b *testing.B) {
	s, _ := newStore(b)
	data := bytes.Repeat([]byte{'x'}, 300)
	i := uint64(0)
	for b.Loop() {
		i++
		e := &raftpb.Entry{Index: new(i), Term: new(uint64(1)), Type: new(raftpb.EntryNormal), Data: data}
		if err := s.Save(hardState(1, 1, i), []*raftpb.Entry{e}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// tamper changes the closed log file at path behind the Store's back.
func tamper(t *testing.T, path string, change func(*bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(change); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// The generation survives a reopen, and a backup is a log of its own that
// holds what the original held.
func TestGenerationAndBackup(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	if g, err := s.Generation(); err != nil || g != nil {
		t.Fatalf("generation of a new log: %x, %v; want none", g, err)
	}
	if err := s.Save(&raftpb.HardState{Term: new(uint64(3)), Commit: new(uint64(4))}, ents(1, 4, 3), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetGeneration([]byte("gen-2")); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "raft.db.copy")
	if err := s.Backup(backup); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if err := s.Backup(backup); err == nil {
		t.Error("a backup over an existing file succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "raft.db"), backup} {
		s, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		g, err := s.Generation()
		if err != nil || string(g) != "gen-2" {
			t.Errorf("%s: generation %q, %v; want gen-2", filepath.Base(p), g, err)
		}
		hs, _, es, err := s.Load()
		if err != nil || hs.GetCommit() != 4 || len(es) != 4 {
			t.Errorf("%s: commit %d, %d entries, %v; want 4 and 4", filepath.Base(p), hs.GetCommit(), len(es), err)
		}
		s.Close()
	}
}
