package syncfs_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/baton-sync/baton/internal/canon"
	"github.com/baton-sync/baton/syncfs"
)

func vec(pairs ...any) syncfs.Vector {
	var v syncfs.Vector
	for i := 0; i < len(pairs); i += 2 {
		v = v.Merge(syncfs.Vector{Counters: []syncfs.Counter{{Device: pairs[i].(string), Value: uint64(pairs[i+1].(int))}}})
	}
	return v
}

func TestVectorZeroValue(t *testing.T) {
	var v syncfs.Vector
	if got := v.Compare(syncfs.Vector{}); got != syncfs.Equal {
		t.Errorf("zero.Compare(zero) = %v; want equal", got)
	}
	u := v.Update("A")
	if !v.IsZero() {
		t.Error("Update modified its receiver")
	}
	if got := u.Compare(v); got != syncfs.Greater {
		t.Errorf("Update(zero).Compare(zero) = %v; want greater", got)
	}
	if u.Counter("A") != 1 || u.Counter("B") != 0 {
		t.Errorf("Update(zero) = %v; want {A:1}", u)
	}
}

func TestVectorUpdate(t *testing.T) {
	v := vec("A", 3, "C", 7)
	u := v.Update("B")
	if want := vec("A", 3, "B", 8, "C", 7); !u.Equal(want) || u.String() != want.String() {
		t.Errorf("%v.Update(B) = %v; want %v", v, u, want)
	}
	if u.LastDevice() != "B" {
		t.Errorf("LastDevice() = %q; want B", u.LastDevice())
	}
	if err := u.Validate(); err != nil {
		t.Error(err)
	}
	if v.String() != "{A:3, C:7}" {
		t.Errorf("Update changed its receiver: %v", v)
	}
}

// A counter at the largest uint64 (a member announced it on purpose) is
// not wrapped to zero by the next update, which would make the entry, and
// every index holding it, invalid.
func TestVectorUpdateSaturates(t *testing.T) {
	v := syncfs.Vector{Counters: []syncfs.Counter{{Device: "A", Value: math.MaxUint64}}}
	u := v.Update("B")
	if err := u.Validate(); err != nil || u.Counter("B") != math.MaxUint64 || u.Compare(v) != syncfs.Greater {
		t.Errorf("%v.Update(B) = %v (validate: %v); want B's counter at the largest value, valid and greater", v, u, err)
	}
	w := u.Update("A")
	if err := w.Validate(); err != nil || w.Counter("A") != math.MaxUint64 {
		t.Errorf("%v.Update(A) = %v (validate: %v); want A's counter kept at the largest value, valid", u, w, err)
	}
}

func TestVectorCompare(t *testing.T) {
	tests := []struct {
		a, b syncfs.Vector
		want syncfs.Ordering
	}{
		{vec(), vec(), syncfs.Equal},
		{vec("A", 1), vec("A", 1), syncfs.Equal},
		{vec("A", 2), vec("A", 1), syncfs.Greater},
		{vec("A", 1), vec("A", 2), syncfs.Lesser},
		{vec("A", 1, "B", 1), vec("A", 1), syncfs.Greater},
		{vec("A", 1), vec("A", 1, "B", 1), syncfs.Lesser},
		{vec("A", 2), vec("A", 1, "B", 1), syncfs.Concurrent},
		{vec("A", 1), vec("B", 1), syncfs.Concurrent},
		{vec("B", 5), vec(), syncfs.Greater},
		{vec("A", 1, "C", 3), vec("B", 2, "C", 3), syncfs.Concurrent},
	}
	for _, tt := range tests {
		if got := tt.a.Compare(tt.b); got != tt.want {
			t.Errorf("%v.Compare(%v) = %v; want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func randVector(r *rand.Rand) syncfs.Vector {
	var v syncfs.Vector
	for range r.IntN(4) {
		dev := string(rune('A' + r.IntN(4)))
		v = v.Merge(syncfs.Vector{Counters: []syncfs.Counter{{Device: dev, Value: uint64(1 + r.IntN(3))}}})
	}
	return v
}

func TestVectorProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		a, b, c := randVector(r), randVector(r), randVector(r)
		if ab, ba := a.Merge(b), b.Merge(a); ab.String() != ba.String() {
			t.Fatalf("merge not commutative: %v, %v", ab, ba)
		}
		if x, y := a.Merge(b).Merge(c), a.Merge(b.Merge(c)); x.String() != y.String() {
			t.Fatalf("merge not associative: %v, %v", x, y)
		}
		if aa := a.Merge(a); aa.String() != a.String() {
			t.Fatalf("merge not idempotent: %v.Merge(itself) = %v", a, aa)
		}
		m := a.Merge(b)
		if !m.GreaterEqual(a) || !m.GreaterEqual(b) {
			t.Fatalf("merge %v not >= both %v, %v", m, a, b)
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("merge %v: %v", m, err)
		}
		ab, ba := a.Compare(b), b.Compare(a)
		inverse := map[syncfs.Ordering]syncfs.Ordering{syncfs.Equal: syncfs.Equal, syncfs.Greater: syncfs.Lesser, syncfs.Lesser: syncfs.Greater, syncfs.Concurrent: syncfs.Concurrent}
		if inverse[ab] != ba {
			t.Fatalf("%v.Compare(%v) = %v but reverse = %v", a, b, ab, ba)
		}
		u := a.Update("B")
		if u.Compare(a) != syncfs.Greater || u.LastDevice() != "B" {
			t.Fatalf("%v.Update(B) = %v; want greater, last device B", a, u)
		}
		for _, c := range a.Counters {
			if c.Value >= u.Counter("B") {
				t.Fatalf("%v.Update(B) = %v; want B above every counter", a, u)
			}
		}
	}
}

func TestVectorCanonicalEncoding(t *testing.T) {
	a := vec("B", 2, "A", 1)
	b := vec("A", 1).Merge(vec("B", 2))
	ea, err := canon.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	eb, _ := canon.Marshal(b)
	if !bytes.Equal(ea, eb) {
		t.Errorf("equal vectors encode differently: %x, %x", ea, eb)
	}
	var back syncfs.Vector
	if err := canon.Unmarshal(ea, &back, 0); err != nil || back.String() != a.String() {
		t.Errorf("round trip = %v, %v; want %v", back, err, a)
	}
	bad := syncfs.Vector{Counters: []syncfs.Counter{{"B", 1}, {"A", 1}}}
	if bad.Validate() == nil {
		t.Error("unsorted vector validated")
	}
	if (syncfs.Vector{Counters: []syncfs.Counter{{"A", 0}}}).Validate() == nil {
		t.Error("zero counter validated")
	}
}
