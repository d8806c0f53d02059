package collections_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
)

// history builds certified updates with explicit clocks against a reference
// state, applying each as it goes so later ones verify.
type history struct {
	t     *testing.T
	d     *ct.Domain
	ref   *collections.State
	seqs  map[string]uint64
	mseq  uint64
	certs []collections.Certified
	ver   []collections.Verified
}

func newHistory(t *testing.T, d *ct.Domain) *history {
	return &history{t: t, d: d, ref: d.State(t), seqs: map[string]uint64{}}
}

// add signs u as author at clock, certifies it as master in epoch, verifies
// and applies it to the reference state.
func (h *history) add(author, master string, epoch, clock uint64, u collections.Update) collections.Certified {
	h.t.Helper()
	sk := author + "/" + u.Collection.String()
	h.seqs[sk]++
	su := ct.Sign(h.t, author, u, h.seqs[sk], clock)
	return h.certify(master, epoch, su)
}

func (h *history) certify(master string, epoch uint64, su collections.SignedUpdate) collections.Certified {
	h.t.Helper()
	h.mseq++
	c, err := collections.Certify(ct.Key(master), su, epoch, h.mseq)
	if err != nil {
		h.t.Fatal(err)
	}
	v, err := h.ref.Verify(c, collections.VerifyOptions{})
	if err != nil {
		h.t.Fatalf("Verify(%s by %s): %v", su.Update().Key, su.Update().Author, err)
	}
	h.ref.Apply(v)
	h.certs = append(h.certs, c)
	h.ver = append(h.ver, v)
	return c
}

// mixedHistory is updates from two masters (a split brain: s1 in epoch 1,
// s2 in epoch 2) and their slaves: puts, conflicting concurrent writes to
// the same keys, stale writes, deletes, and one update certified twice.
func mixedHistory(t *testing.T) *history {
	d := ct.NewTestDomain(t, 2)
	h := newHistory(t, d)
	s1, s2 := ct.ID("s1").String(), ct.ID("s2").String()
	D, C, R := collections.Domain, collections.Catalog, collections.Report
	h.add("s1", "s1", 1, 1, mustPut(collections.User{Name: "ann", HomeServer: s1}))
	h.add("s1", "s1", 1, 2, mustPut(collections.User{Name: "bob", HomeServer: s2}))
	h.add("s1", "s1", 1, 3, mustPut(collections.User{Name: "carol", HomeServer: s2}))
	// Split brain: both masters write user/dave and user/ann at clock 4.
	h.add("s1", "s1", 1, 4, mustPut(collections.User{Name: "dave", HomeServer: s1}))
	h.add("s2", "s2", 2, 4, mustPut(collections.User{Name: "dave", HomeServer: s2}))
	h.add("s2", "s2", 2, 4, mustPut(collections.User{Name: "ann", HomeServer: s1}))
	// A stale write: at an earlier log position than bob's current record
	// (a deposed master's certification).
	next := h.mseq
	h.mseq = 0
	h.add("s2", "s2", 2, 1, mustPut(collections.User{Name: "bob", HomeServer: s1}))
	h.mseq = next
	h.add("s1", "s1", 1, 5, mustPut(collections.User{Name: "erin", HomeServer: s1}))
	h.add("s1", "s1", 1, 6, collections.Delete(D, collections.UserPrefix+"erin"))

	h.add("s1", "s1", 1, 7, mustPut(folder("f1", "ann", "s1")))
	h.add("s2", "s1", 1, 8, mustPut(folder("f2", "bob", "s2")))
	h.add("s2", "s2", 2, 9, mustPut(folder("f2", "bob", "s2", "carol")))
	f3 := h.add("s2", "s1", 1, 9, mustPut(folder("f3", "carol", "s2", "ann")))
	h.add("s2", "s2", 2, 10, collections.Delete(C, collections.FolderPrefix+"f2"))
	h.add("s1", "s1", 1, 10, mustPut(folder("f1", "ann", "s1", "bob")))

	h.add("s1", "s1", 1, 11, mustPut(report("r1", "s1", "one")))
	h.add("s2", "s2", 2, 11, mustPut(report("r2", "s2", "two")))
	h.add("s2", "s2", 2, 12, mustPut(report("r2", "s2", "two, again")))
	h.add("s1", "s1", 1, 13, collections.Delete(R, collections.ReportPrefix+"r1"))
	h.add("s2", "s2", 2, 12, mustPut(report("r3", "s2", "three")))

	// The new master certifies an update the old one already had.
	h.certify("s2", 3, f3.Signed())
	return h
}

func snapshotHashes(t *testing.T, st *collections.State, k collections.Kind) [][32]byte {
	t.Helper()
	var out [][32]byte
	for _, b := range st.Snapshot(k) {
		c, err := collections.UnmarshalCertified(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c.Hash())
	}
	return out
}

// TestPermutations: the same verified updates applied in many orders give
// identical records, digests, summaries and snapshots.
func TestPermutations(t *testing.T) {
	h := mixedHistory(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		st := h.d.State(t)
		order := rng.Perm(len(h.ver))
		for _, j := range order {
			if got := st.Apply(h.ver[j]); got.Outcome == collections.Rejected {
				t.Fatalf("order %v: update %d rejected: %v", order, j, got.Err)
			}
		}
		ct.AssertSameDigests(t, h.ref, st) // and shows differing records
		// The same update certified twice (f3) keeps the certification
		// that arrived first, so the replay order of a snapshot may
		// differ; what it holds may not.
		for _, k := range collections.Kinds {
			sorted := func(hs [][32]byte) [][32]byte {
				slices.SortFunc(hs, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
				return hs
			}
			if diff := cmp.Diff(sorted(snapshotHashes(t, h.ref, k)), sorted(snapshotHashes(t, st, k))); diff != "" {
				t.Fatalf("order %d: %s snapshots differ (-ref +got):\n%s", i, k, diff)
			}
		}
		if diff := cmp.Diff(h.ref.Summary(), st.Summary()); diff != "" {
			t.Fatalf("order %d: summaries differ:\n%s", i, diff)
		}
		if st.NextClock() != h.ref.NextClock() {
			t.Fatalf("order %d: NextClock = %d; want %d", i, st.NextClock(), h.ref.NextClock())
		}
		if t.Failed() {
			t.Fatalf("order %v", order)
		}
	}
}

// TestMergeOutcome pins who wins in the history: the later log position;
// deletes win as tombstones.
func TestMergeOutcome(t *testing.T) {
	st := mixedHistory(t).ref
	s2 := ct.ID("s2").String()
	if got, _ := st.User("dave"); got.HomeServer != s2 {
		t.Errorf("dave's home = %s; want %s (the later log position wins, whatever the clocks)", got.HomeServer, s2)
	}
	if got, _ := st.User("bob"); got.HomeServer != s2 {
		t.Errorf("bob's home = %s; want %s (an earlier log position loses)", got.HomeServer, s2)
	}
	if _, ok := st.User("erin"); ok {
		t.Errorf("erin present after delete")
	}
	if r, ok := st.Lookup(collections.Domain, collections.UserPrefix+"erin"); ok || r.Key != "" {
		t.Errorf("Lookup(deleted) = %v, %v; want absent", r, ok)
	}
	var tomb bool
	for _, r := range st.Records(collections.Domain) {
		tomb = tomb || r.Key == collections.UserPrefix+"erin" && r.Deleted
	}
	if !tomb {
		t.Errorf("no tombstone for user/erin in Records")
	}
	if got := len(st.Folders()); got != 2 {
		t.Errorf("%d folders; want 2 (f1, f3)", got)
	}
	if f, _ := st.Folder("f1"); f.Members["bob"] != collections.RightReadWrite {
		t.Errorf("f1 members = %v; want bob rw", f.Members)
	}
	if got := st.Count(collections.Report); got != 2 {
		t.Errorf("Count(report) = %d; want 2", got)
	}
	if r, _ := st.ReportByID("r2"); string(r.Content) != "two, again" {
		t.Errorf("r2 = %q", r.Content)
	}
	if st.MaxEpoch() != 3 {
		t.Errorf("MaxEpoch = %d; want 3", st.MaxEpoch())
	}
}

// TestReplay: re-applying any old update, in any state, changes nothing.
func TestReplay(t *testing.T) {
	h := mixedHistory(t)
	st := h.ref
	digests := func() (out [][32]byte) {
		for _, k := range collections.Kinds {
			out = append(out, st.Digest(k))
		}
		return out
	}
	before, sum, snap := digests(), st.Summary(), st.Snapshot(collections.Domain)
	for i, c := range h.certs {
		c, err := collections.UnmarshalCertified(c.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		v, err := st.Verify(c, collections.VerifyOptions{})
		if err != nil {
			// A replayed folder create whose folder was deleted still
			// verifies; nothing in the history may stop verifying.
			t.Fatalf("update %d: Verify: %v", i, err)
		}
		got := st.Apply(v)
		if got.Outcome != collections.Duplicate && got.Outcome != collections.Stale {
			t.Errorf("replay of update %d (%s) = %v; want duplicate or stale", i, c.Update().Key, got.Outcome)
		}
		if got.Store {
			t.Errorf("replay of update %d asks to be stored", i)
		}
	}
	if diff := cmp.Diff(before, digests()); diff != "" {
		t.Errorf("digests changed by replay:\n%s", diff)
	}
	if diff := cmp.Diff(sum, st.Summary()); diff != "" {
		t.Errorf("summary changed by replay:\n%s", diff)
	}
	if diff := cmp.Diff(snap, st.Snapshot(collections.Domain)); diff != "" {
		t.Errorf("snapshot changed by replay:\n%s", diff)
	}
}

// TestReplayAfterCompaction: after reloading only the snapshot, superseded
// updates replayed are stale and change no record.
func TestReplayAfterCompaction(t *testing.T) {
	h := mixedHistory(t)
	store := ct.NewStorage()
	st := h.d.State(t)
	for _, k := range collections.Kinds {
		if err := store.Replace(k, h.ref.Snapshot(k)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Load(store, k); err != nil {
			t.Fatal(err)
		}
	}
	ct.AssertSameDigests(t, h.ref, st)
	for i, c := range h.certs {
		v, err := st.Verify(c, collections.VerifyOptions{})
		if err != nil {
			t.Fatalf("update %d: Verify: %v", i, err)
		}
		if got := st.Apply(v); got.Outcome == collections.Accepted || got.Outcome == collections.Rejected {
			t.Errorf("replay of update %d after compaction = %v (%v)", i, got.Outcome, got.Err)
		}
	}
	ct.AssertSameDigests(t, h.ref, st)
	for _, k := range collections.Kinds {
		for _, author := range []string{"s1", "s2"} {
			if got, want := st.NextSeq(ct.ID(author), k), h.ref.NextSeq(ct.ID(author), k); got != want {
				t.Errorf("NextSeq(%s, %s) after compaction = %d; want %d", author, k, got, want)
			}
		}
	}
}

// TestEquivocation: a second, different update with a used sequence number
// is rejected and changes nothing.
func TestEquivocation(t *testing.T) {
	d, st := ruleBase(t)
	seq := st.NextSeq(ct.ID("s2"), collections.Report)
	a := d.Certify(t, "s1", ct.Sign(t, "s2", mustPut(report("ra", "s2", "a")), seq, st.NextClock()))
	b := d.Certify(t, "s1", ct.Sign(t, "s2", mustPut(report("rb", "s2", "b")), seq, st.NextClock()))
	if got := ct.Deliver(t, st, a); got.Outcome != collections.Accepted {
		t.Fatalf("first = %v", got.Outcome)
	}
	before := st.Digest(collections.Report)
	got := ct.Deliver(t, st, b)
	if got.Outcome != collections.Rejected || !errors.Is(got.Err, collections.ErrEquivocation) {
		t.Fatalf("second = %v (%v); want rejected, ErrEquivocation", got.Outcome, got.Err)
	}
	if st.Digest(collections.Report) != before {
		t.Fatal("digest changed")
	}
	if got := ct.Deliver(t, st, a); got.Outcome != collections.Duplicate || !errors.Is(got.Err, collections.ErrDuplicate) {
		t.Fatalf("replay of first = %v (%v); want duplicate", got.Outcome, got.Err)
	}
	if got := st.Apply(collections.Verified{}); got.Outcome != collections.Rejected || !errors.Is(got.Err, collections.ErrNotVerified) {
		t.Fatalf("Apply(zero) = %v (%v); want rejected, ErrNotVerified", got.Outcome, got.Err)
	}
}

// TestNext: NextSeq and NextClock follow what was applied.
func TestNext(t *testing.T) {
	d, st := ruleBase(t)
	if got := st.NextSeq(ct.ID("s1"), collections.Domain); got != 3 {
		t.Errorf("NextSeq(s1, domain) = %d; want 3", got)
	}
	if got := st.NextSeq(ct.ID("s3"), collections.Domain); got != 1 {
		t.Errorf("NextSeq(s3, domain) = %d; want 1", got)
	}
	c := d.Certify(t, "s1", ct.Sign(t, "s2", mustPut(report("r9", "s2", "x")), 7, 40))
	ct.Deliver(t, st, c)
	if got := st.NextSeq(ct.ID("s2"), collections.Report); got != 8 {
		t.Errorf("NextSeq(s2, report) = %d; want 8", got)
	}
	if got := st.NextClock(); got != 41 {
		t.Errorf("NextClock = %d; want 41", got)
	}
}
