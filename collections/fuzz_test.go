package collections_test

import (
	"bytes"
	"testing"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
)

// fuzzSeeds are valid encodings of every format.
func fuzzSeeds(f *testing.F) (d *ct.Domain, st *collections.State, su collections.SignedUpdate, c collections.Certified, sum []byte) {
	d, _, su, c, s := goldenValues(f)
	st = d.State(f)
	sum, err := s.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	return d, st, su, c, sum
}

func FuzzUnmarshalSignedUpdate(f *testing.F) {
	_, st, su, c, _ := fuzzSeeds(f)
	f.Add(su.Marshal())
	f.Add(c.Signed().Marshal())
	f.Add(c.Marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		su, err := collections.UnmarshalSignedUpdate(data)
		if err != nil {
			return
		}
		if !bytes.Equal(su.Marshal(), data) {
			t.Fatalf("decoded update re-encodes differently")
		}
		if err := su.Update().Validate(); err != nil {
			t.Fatalf("decoded update does not validate: %v", err)
		}
		st.VerifyProposal(su, ct.ID("s1")) // must not panic
	})
}

func FuzzUnmarshalCertified(f *testing.F) {
	_, st, su, c, _ := fuzzSeeds(f)
	f.Add(c.Marshal())
	f.Add(su.Marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := collections.UnmarshalCertified(data)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Marshal(), data) {
			t.Fatalf("decoded certification re-encodes differently")
		}
		if c.Epoch() == 0 || c.MasterSeq() == 0 {
			t.Fatalf("epoch %d, master seq %d accepted", c.Epoch(), c.MasterSeq())
		}
		if v, err := st.Verify(c, collections.VerifyOptions{}); err == nil {
			st.Clone().Apply(v) // must not panic
		}
	})
}

func FuzzOpenGenesis(f *testing.F) {
	d, _, _, c, _ := fuzzSeeds(f)
	f.Add(d.Genesis.Marshal())
	f.Add(c.Marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := collections.OpenGenesis(data)
		if err != nil {
			return
		}
		if !bytes.Equal(g.Marshal(), data) {
			t.Fatalf("opened genesis re-encodes differently")
		}
		if _, err := collections.NewState(g); err != nil {
			t.Fatalf("NewState(opened genesis) = %v", err)
		}
	})
}

func FuzzUnmarshalSummary(f *testing.F) {
	_, _, _, _, sum := fuzzSeeds(f)
	f.Add(sum)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := collections.UnmarshalSummary(data)
		if err != nil {
			return
		}
		again, err := s.Marshal()
		if err != nil {
			t.Fatalf("re-encoding summary: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("decoded summary re-encodes differently")
		}
	})
}

func FuzzDecodeValue(f *testing.F) {
	d, st, su, _, _ := fuzzSeeds(f)
	for _, k := range collections.Kinds {
		for _, r := range st.Records(k) {
			f.Add(uint8(k), r.Key, r.Value)
		}
	}
	_ = d
	u := su.Update()
	f.Add(uint8(u.Collection), u.Key, u.Value)
	f.Add(uint8(collections.Report), "report/r1", mustPut(report("r1", "s1", "c")).Value)
	f.Fuzz(func(t *testing.T, k uint8, key string, data []byte) {
		v, err := collections.DecodeValue(collections.Kind(k), key, data)
		if err != nil {
			return
		}
		if v.Key() != key || v.Collection() != collections.Kind(k) {
			t.Fatalf("decoded %T at %s/%q names %s/%q", v, collections.Kind(k), key, v.Collection(), v.Key())
		}
		again, err := collections.EncodeValue(v)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("decoded value re-encodes differently (%v)", err)
		}
	})
}

func FuzzUnmarshalUpdate(f *testing.F) {
	_, _, su, _, _ := fuzzSeeds(f)
	b, _ := su.Update().Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := collections.UnmarshalUpdate(data)
		if err != nil {
			return
		}
		again, err := u.Marshal()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("decoded update re-encodes differently (%v)", err)
		}
	})
}
