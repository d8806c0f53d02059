package collections_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/baton-sync/baton/collections"
	ct "github.com/baton-sync/baton/collections/collectionstest"
	"github.com/baton-sync/baton/identity"
)

// deviceCert is a certificate for device (a test key name) of user, issued
// by server, valid for a week from ct.Created.
func deviceCert(user, device, server string) collections.DeviceCert {
	return collections.DeviceCert{
		User: user, Device: ct.ID(device).String(), Name: device + " laptop", Server: ct.ID(server).String(),
		Issued: ct.Created.UnixNano(), Expires: ct.Created.Add(7 * 24 * time.Hour).UnixNano(),
	}
}

// deviceRecord is the Device record of deviceCert, signed by signer.
func deviceRecord(t testing.TB, c collections.DeviceCert, signer string, revoked bool) collections.Device {
	t.Helper()
	raw, err := collections.IssueDeviceCert(ct.Key(signer), c)
	if err != nil {
		t.Fatalf("IssueDeviceCert: %v", err)
	}
	return collections.Device{Cert: raw, Revoked: revoked}
}

func TestDeviceCert(t *testing.T) {
	c := deviceCert("ann", "d1", "s2")
	raw, err := collections.IssueDeviceCert(ct.Key("s2"), c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := collections.OpenDeviceCert(raw)
	if err != nil || got != c {
		t.Fatalf("OpenDeviceCert = %+v, %v; want %+v", got, err, c)
	}
	if got.DeviceID() != ct.ID("d1") || got.ServerID() != ct.ID("s2") {
		t.Errorf("IDs = %s, %s", got.DeviceID(), got.ServerID())
	}
	if !c.Current(ct.Created) || !c.Current(ct.Created.Add(-time.Second)) || c.Current(ct.Created.Add(-collections.MaxClockSkew-1)) || c.Current(c.ExpiresAt()) {
		t.Errorf("Current is wrong at the edges of [%v, %v)", c.IssuedAt(), c.ExpiresAt())
	}

	// Only the server the certificate names can issue it.
	if _, err := collections.IssueDeviceCert(ct.Key("s1"), c); !errors.Is(err, collections.ErrUnauthorized) {
		t.Errorf("IssueDeviceCert(by another server) = %v; want ErrUnauthorized", err)
	}
	// A certificate signed by another key does not open.
	forged := reseal(t, raw, func(e *identity.Envelope) {
		sig, _ := ct.Key("s1").Sign(identity.PurposeDevice, e.Payload)
		e.Signatures[0] = identity.Signature{Signer: ct.Key("s1").Public(), Sig: sig}
	})
	if _, err := collections.OpenDeviceCert(forged); !errors.Is(err, collections.ErrBadSignature) {
		t.Errorf("OpenDeviceCert(signed by s1) = %v; want ErrBadSignature", err)
	}
	// A certificate signed for another purpose does not open.
	other := reseal(t, raw, func(e *identity.Envelope) {
		e.Purpose = identity.PurposeHostRecord
		sig, _ := ct.Key("s2").Sign(identity.PurposeHostRecord, e.Payload)
		e.Signatures[0].Sig = sig
	})
	if _, err := collections.OpenDeviceCert(other); !errors.Is(err, collections.ErrBadSignature) {
		t.Errorf("OpenDeviceCert(host-record purpose) = %v; want ErrBadSignature", err)
	}
	if _, err := collections.OpenDeviceCert(append(bytes.Clone(raw), 0)); !errors.Is(err, collections.ErrMalformed) {
		t.Errorf("OpenDeviceCert(trailing byte) = %v; want ErrMalformed", err)
	}
	if _, err := collections.OpenDeviceCert(make([]byte, collections.MaxDeviceCertSize+1)); !errors.Is(err, collections.ErrTooLarge) {
		t.Errorf("OpenDeviceCert(oversized) = %v; want ErrTooLarge", err)
	}

	bad := []struct {
		name string
		edit func(*collections.DeviceCert)
	}{
		{"bad user", func(c *collections.DeviceCert) { c.User = "-x" }},
		{"bad device", func(c *collections.DeviceCert) { c.Device = "nope" }},
		{"empty name", func(c *collections.DeviceCert) { c.Name = "" }},
		{"unprintable name", func(c *collections.DeviceCert) { c.Name = "a\x00b" }},
		{"device is the server", func(c *collections.DeviceCert) { c.Device = c.Server }},
		{"expires before issued", func(c *collections.DeviceCert) { c.Expires = c.Issued }},
		{"no issue time", func(c *collections.DeviceCert) { c.Issued = 0 }},
	}
	for _, tc := range bad {
		c := deviceCert("ann", "d1", "s2")
		tc.edit(&c)
		if _, err := collections.IssueDeviceCert(ct.Key("s2"), c); !errors.Is(err, collections.ErrMalformed) {
			t.Errorf("IssueDeviceCert(%s) = %v; want ErrMalformed", tc.name, err)
		}
	}
}

// TestDeviceKeyMustMatch: a Device record lives at the key of its
// certificate's device and nowhere else.
func TestDeviceKeyMustMatch(t *testing.T) {
	dev := deviceRecord(t, deviceCert("ann", "d1", "s2"), "s2", false)
	if got, want := dev.Key(), collections.DevicePrefix+ct.ID("d1").String(); got != want {
		t.Fatalf("Key() = %q; want %q", got, want)
	}
	b, err := collections.EncodeValue(dev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := collections.DecodeValue(collections.Catalog, collections.DevicePrefix+ct.ID("d2").String(), b); !errors.Is(err, collections.ErrMalformed) {
		t.Errorf("DecodeValue(at another device's key) = %v; want ErrMalformed", err)
	}
	if _, err := collections.DecodeValue(collections.Domain, dev.Key(), b); !errors.Is(err, collections.ErrMalformed) {
		t.Errorf("DecodeValue(in the Domain) = %v; want ErrMalformed", err)
	}
	if v, err := collections.DecodeValue(collections.Catalog, dev.Key(), b); err != nil || !bytes.Equal(v.(collections.Device).Cert, dev.Cert) {
		t.Errorf("DecodeValue = %v, %v", v, err)
	}
}

// TestDeviceRules covers the device write rules the matrix does not reach.
func TestDeviceRules(t *testing.T) {
	put := func(user, device, server, signer string, revoked bool) func(t *testing.T) collections.Update {
		return func(t *testing.T) collections.Update {
			return ct.MustPut(t, deviceRecord(t, deviceCert(user, device, server), signer, revoked))
		}
	}
	del := func(device string) func(t *testing.T) collections.Update {
		return func(t *testing.T) collections.Update {
			return collections.Delete(collections.Catalog, collections.DevicePrefix+ct.ID(device).String())
		}
	}
	tests := []struct {
		name   string
		author string
		u      func(t *testing.T) collections.Update
		ok     bool
	}{
		{"home server issues", "s2", put("ann", "d2", "s2", "s2", false), true},
		{"home server revokes", "s2", put("ann", "d1", "s2", "s2", true), true},
		{"home server re-issues for another user", "s1", put("bob", "d1", "s1", "s1", false), true},
		{"master issues for another server's user", "s1", put("ann", "d2", "s1", "s1", false), false},
		{"server publishes another server's certificate", "s1", put("ann", "d2", "s2", "s2", false), false},
		{"device for an unknown user", "s2", put("zed", "d2", "s2", "s2", false), false},
		{"device publishes its own record", "agent", put("ann", "agent", "s2", "s2", false), false},
		{"issuer deletes", "s2", del("d1"), true},
		{"other server deletes", "s3", del("d1"), false},
		{"delete of an unknown device", "s2", del("d9"), false},
	}
	d, base := ruleBase(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := base.Clone()
			u := tc.u(t)
			su := ct.Sign(t, tc.author, u, st.NextSeq(ct.ID(tc.author), u.Collection), st.NextClock())
			checkRule(t, st, d.Certify(t, "s1", su), tc.ok)
		})
	}
}

// TestDeviceHistory: a device record by a user's former home server is
// refused live but replays as history (loading data files, anti-entropy),
// and no longer makes a valid device.
func TestDeviceHistory(t *testing.T) {
	d, base := ruleBase(t)
	st := base.Clone()
	d.Commit(t, st, "s1", ct.MustPut(t, collections.User{Name: "ann", HomeServer: ct.ID("s3").String()}))

	u := ct.MustPut(t, deviceRecord(t, deviceCert("ann", "d2", "s2"), "s2", false))
	c := d.Certify(t, "s1", ct.Sign(t, "s2", u, st.NextSeq(ct.ID("s2"), collections.Catalog), st.NextClock()))
	checkRule(t, st, c, false)
	v, err := st.Verify(c, collections.VerifyOptions{History: true})
	if err != nil {
		t.Fatalf("Verify(History) = %v", err)
	}
	if got := st.Apply(v); got.Outcome != collections.Accepted {
		t.Fatalf("Apply = %v", got.Outcome)
	}
	if _, ok := st.ValidDevice(ct.ID("d2"), ct.Created.Add(time.Hour)); ok {
		t.Errorf("device certified by ann's former home server is valid")
	}
	// History still requires the author to be the certificate's server.
	u = ct.MustPut(t, deviceRecord(t, deviceCert("ann", "d3", "s2"), "s2", false))
	c = d.Certify(t, "s1", ct.Sign(t, "s1", u, st.NextSeq(ct.ID("s1"), collections.Catalog), st.NextClock()))
	if _, err := st.Verify(c, collections.VerifyOptions{History: true}); !errors.Is(err, collections.ErrUnauthorized) {
		t.Errorf("Verify(History, author not the issuer) = %v; want ErrUnauthorized", err)
	}
}

func TestValidDevice(t *testing.T) {
	d, base := ruleBase(t)
	id := ct.ID("d1")
	c := deviceCert("ann", "d1", "s2")
	during := ct.Created.Add(time.Hour)
	tests := []struct {
		name   string
		change func(t *testing.T, st *collections.State)
		at     time.Time
		ok     bool
	}{
		{"issued", nil, during, true},
		{"just before issue (clock skew)", nil, ct.Created.Add(-time.Second), true},
		{"long before issue", nil, ct.Created.Add(-collections.MaxClockSkew - time.Second), false},
		{"expired", nil, c.ExpiresAt(), false},
		{"revoked", func(t *testing.T, st *collections.State) {
			d.Commit(t, st, "s2", ct.MustPut(t, deviceRecord(t, c, "s2", true)))
		}, during, false},
		{"deleted", func(t *testing.T, st *collections.State) {
			d.Commit(t, st, "s2", collections.Delete(collections.Catalog, collections.DevicePrefix+id.String()))
		}, during, false},
		{"user removed", func(t *testing.T, st *collections.State) {
			d.Commit(t, st, "s1", collections.Delete(collections.Domain, collections.UserPrefix+"ann"))
		}, during, false},
		{"user moved to another home server", func(t *testing.T, st *collections.State) {
			d.Commit(t, st, "s1", ct.MustPut(t, collections.User{Name: "ann", HomeServer: ct.ID("s3").String()}))
		}, during, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := base.Clone()
			if tc.change != nil {
				tc.change(t, st)
			}
			user, ok := st.ValidDevice(id, tc.at)
			if ok != tc.ok || ok && user != "ann" {
				t.Errorf("ValidDevice = %q, %v; want ann, %v", user, ok, tc.ok)
			}
			if n := len(st.ValidDevices(tc.at)); n != map[bool]int{true: 1, false: 0}[tc.ok] {
				t.Errorf("ValidDevices has %d entries; want ok = %v", n, tc.ok)
			}
		})
	}

	st := base.Clone()
	d.Commit(t, st, "s1", ct.MustPut(t, deviceRecord(t, deviceCert("bob", "d2", "s1"), "s1", false)))
	if n := len(st.Devices()); n != 2 {
		t.Errorf("Devices has %d entries; want 2", n)
	}
	if got := st.DevicesOf("bob"); len(got) != 1 || got[0].Key() != collections.DevicePrefix+ct.ID("d2").String() {
		t.Errorf("DevicesOf(bob) = %v", got)
	}
	if rec, cert, ok := st.Device(id); !ok || rec.Revoked || cert != c {
		t.Errorf("Device(d1) = %+v, %+v, %v", rec, cert, ok)
	}
	if _, _, ok := st.Device(ct.ID("d9")); ok {
		t.Errorf("Device(unknown) found")
	}
}

func TestDeviceGolden(t *testing.T) {
	c := deviceCert("ann", "d1", "s2")
	raw, err := collections.IssueDeviceCert(ct.Key("s2"), c)
	if err != nil {
		t.Fatal(err)
	}
	b, err := collections.EncodeValue(collections.Device{Cert: raw, Revoked: true})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "device_cert", raw)
	golden(t, "device", b)
	if *update {
		return
	}
	got, err := collections.OpenDeviceCert(readGolden(t, "device_cert"))
	if err != nil || got != c {
		t.Errorf("OpenDeviceCert(golden) = %+v, %v; want %+v", got, err, c)
	}
	v, err := collections.DecodeValue(collections.Catalog, collections.DevicePrefix+ct.ID("d1").String(), readGolden(t, "device"))
	if err != nil || !v.(collections.Device).Revoked {
		t.Errorf("DecodeValue(golden device) = %+v, %v", v, err)
	}
}

func FuzzOpenDeviceCert(f *testing.F) {
	raw, err := collections.IssueDeviceCert(ct.Key("s2"), deviceCert("ann", "d1", "s2"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte(ct.ID("s1").String()))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := collections.OpenDeviceCert(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("opened certificate does not validate: %v", err)
		}
		again, err := collections.IssueDeviceCert(ct.Key("s2"), c)
		if c.Server == ct.ID("s2").String() && (err != nil || !bytes.Equal(again, data)) {
			t.Fatalf("opened certificate re-issues differently: %v", err)
		}
	})
}
