package collections_test

import (
	"errors"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
)

// permutations calls f with every order of n items.
func permutations(n int, f func(order []int)) {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	var rec func(k int)
	rec = func(k int) {
		if k == n {
			f(order)
			return
		}
		for i := k; i < n; i++ {
			order[k], order[i] = order[i], order[k]
			rec(k + 1)
			order[k], order[i] = order[i], order[k]
		}
	}
	rec(0)
}

// TestRevocationIsFinal: once a device is revoked, no later record of it
// (a renewal, a fresh login's record, a delete) makes it valid again,
// whatever their places in the log and whatever order a host merges
// them in; and the write rules refuse such records over a revocation.
func TestRevocationIsFinal(t *testing.T) {
	d, base := ruleBase(t)
	id := ct.ID("d1")
	during := ct.Created.Add(time.Hour)
	if _, ok := base.ValidDevice(id, during); !ok {
		t.Fatalf("d1 is not valid before the revocation")
	}

	// Certified in this log order, without the rules (as a master that
	// certified them before the revocation was applied would have): the
	// revocation first, then a renewal and a new login's record of the
	// same device key, then a delete.
	issue := func(c collections.DeviceCert, revoked bool) collections.Update {
		return ct.MustPut(t, deviceRecord(t, c, "s2", revoked))
	}
	renewed := deviceCert("ann", "d1", "s2")
	renewed.Issued = ct.Created.Add(time.Minute).UnixNano()
	relogin := deviceCert("ann", "d1", "s2")
	relogin.Name = "d1 laptop again"
	updates := []collections.Update{
		issue(deviceCert("ann", "d1", "s2"), true),
		issue(renewed, false),
		issue(relogin, false),
		collections.Delete(collections.Catalog, collections.DevicePrefix+id.String()),
	}
	seq := base.NextSeq(ct.ID("s2"), collections.Catalog)
	var certs []collections.Certified
	for i, u := range updates {
		su := ct.Sign(t, "s2", u, seq+uint64(i), base.NextClock()+uint64(i))
		certs = append(certs, d.Certify(t, "s1", su))
	}

	var first *collections.State
	permutations(len(certs), func(order []int) {
		st := base.Clone()
		for _, i := range order {
			v, err := st.Verify(certs[i], collections.VerifyOptions{History: true})
			if err != nil {
				t.Fatalf("order %v: Verify(History) of update %d: %v", order, i, err)
			}
			st.Apply(v)
		}
		if _, ok := st.ValidDevice(id, during); ok {
			t.Errorf("order %v: the revoked device is valid again", order)
		}
		if dev, _, ok := st.Device(id); !ok || !dev.Revoked {
			t.Errorf("order %v: Device(d1) = %+v, %v; want the revoked record", order, dev, ok)
		}
		if first == nil {
			first = st
		} else {
			ct.AssertSameDigests(t, first, st)
		}
	})

	// Live, and in log order, every write over the revocation is refused.
	st := base.Clone()
	v, err := st.Verify(certs[0], collections.VerifyOptions{Log: true})
	if err != nil {
		t.Fatalf("Verify(revocation): %v", err)
	}
	st.Apply(v)
	for i, c := range certs[1:] {
		if _, err := st.Verify(c, collections.VerifyOptions{Log: true}); !errors.Is(err, collections.ErrFinal) || !errors.Is(err, collections.ErrUnauthorized) {
			t.Errorf("Verify(Log) of update %d over the revocation = %v; want ErrFinal and ErrUnauthorized", i+1, err)
		}
		if _, err := st.VerifyProposal(c.Signed(), ct.ID("s1")); !errors.Is(err, collections.ErrFinal) {
			t.Errorf("VerifyProposal of update %d over the revocation = %v; want ErrFinal", i+1, err)
		}
	}
}
