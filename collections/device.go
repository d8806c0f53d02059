package collections

import (
	"fmt"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/canon"
)

// DevicePrefix starts the Catalog key of a device: "device/PEERID".
const DevicePrefix = "device/"

// MaxDeviceCertSize caps an encoded device certificate envelope.
const MaxDeviceCertSize = 4 << 10

// DeviceCert binds a device's peer ID to a user for a time. The user's
// home server signs it (identity.PurposeDevice) when the user logs in on
// the device, and re-signs it when the device renews it.
type DeviceCert struct {
	User    string `cbor:"1,keyasint"` // user name
	Device  string `cbor:"2,keyasint"` // the device's peer ID
	Name    string `cbor:"3,keyasint"` // the device's name, as the user gave it
	Server  string `cbor:"4,keyasint"` // the issuing home server's peer ID
	Issued  int64  `cbor:"5,keyasint"` // unix nanoseconds
	Expires int64  `cbor:"6,keyasint"` // unix nanoseconds
	// UserID is the user's identity (User.ID) when the certificate was
	// issued: the certificate is worth nothing once that user is removed,
	// even if another user is later given the name.
	UserID string `cbor:"7,keyasint,omitempty"`
}

// Validate checks the certificate's fields on their own.
func (c DeviceCert) Validate() error {
	if err := identity.ValidateName(c.User); err != nil {
		return fmt.Errorf("%w: device certificate user: %v", ErrMalformed, err)
	}
	if _, err := parseID(c.Device); err != nil {
		return fmt.Errorf("device certificate device: %w", err)
	}
	if err := validateText(c.Name); err != nil {
		return fmt.Errorf("device certificate name: %w", err)
	}
	if _, err := parseID(c.Server); err != nil {
		return fmt.Errorf("device certificate server: %w", err)
	}
	if c.Device == c.Server {
		return fmt.Errorf("%w: device certificate names its server as the device", ErrMalformed)
	}
	if c.UserID != "" {
		if err := ValidateUserID(c.UserID); err != nil {
			return fmt.Errorf("device certificate: %w", err)
		}
	}
	if c.Issued <= 0 || c.Expires <= c.Issued {
		return fmt.Errorf("%w: device certificate is valid from %d to %d", ErrMalformed, c.Issued, c.Expires)
	}
	return nil
}

// DeviceID is the certified device's peer ID.
func (c DeviceCert) DeviceID() lpeer.ID { return mustDecode(c.Device) }

// ServerID is the issuing server's peer ID.
func (c DeviceCert) ServerID() lpeer.ID { return mustDecode(c.Server) }

// IssuedAt is Issued as a time.
func (c DeviceCert) IssuedAt() time.Time { return time.Unix(0, c.Issued).UTC() }

// ExpiresAt is Expires as a time.
func (c DeviceCert) ExpiresAt() time.Time { return time.Unix(0, c.Expires).UTC() }

// MaxClockSkew is how far ahead of a host's clock a certificate's issue
// time may be: the issuing server's clock may run ahead of the checker's.
const MaxClockSkew = 5 * time.Minute

// Current reports whether now is within the certificate's validity,
// allowing the issue time to be up to MaxClockSkew ahead.
func (c DeviceCert) Current(now time.Time) bool {
	t := now.UnixNano()
	return t >= c.Issued-int64(MaxClockSkew) && t < c.Expires
}

// IssueDeviceCert validates c and signs it with server, which must be the
// server c names. It returns the signed envelope bytes, which
// OpenDeviceCert reads.
func IssueDeviceCert(server *identity.PrivateKey, c DeviceCert) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if server.ID().String() != c.Server {
		return nil, fmt.Errorf("%w: device certificate names server %s, signed by %s", ErrUnauthorized, c.Server, server.ID())
	}
	payload, err := canon.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encoding device certificate: %w", err)
	}
	env, err := identity.Seal(identity.PurposeDevice, payload, server)
	if err != nil {
		return nil, fmt.Errorf("signing device certificate: %w", err)
	}
	raw, err := env.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encoding device certificate: %w", err)
	}
	if len(raw) > MaxDeviceCertSize {
		return nil, fmt.Errorf("%w: device certificate is %d bytes, limit %d", ErrTooLarge, len(raw), MaxDeviceCertSize)
	}
	return raw, nil
}

// OpenDeviceCert decodes and verifies a signed device certificate: the
// canonical encoding, the fields, and one signature (PurposeDevice) by the
// server the certificate names. It does not check the validity period or
// the Domain: State.ValidDevice does.
func OpenDeviceCert(data []byte) (DeviceCert, error) {
	if len(data) > MaxDeviceCertSize {
		return DeviceCert{}, fmt.Errorf("%w: device certificate is %d bytes, limit %d", ErrTooLarge, len(data), MaxDeviceCertSize)
	}
	env, err := identity.UnmarshalEnvelope(data)
	if err != nil {
		return DeviceCert{}, fmt.Errorf("%w: device certificate: %v", ErrMalformed, err)
	}
	if err := mustBeCanonical(data, env); err != nil {
		return DeviceCert{}, fmt.Errorf("device certificate: %w", err)
	}
	var c DeviceCert
	if err := decodeCanonical(env.Payload, &c, MaxDeviceCertSize); err != nil {
		return DeviceCert{}, fmt.Errorf("device certificate: %w", err)
	}
	if err := c.Validate(); err != nil {
		return DeviceCert{}, err
	}
	if err := env.OpenBy(identity.PurposeDevice, c.ServerID()); err != nil {
		return DeviceCert{}, sigErr("device certificate", err)
	}
	return c, nil
}

// Device is a user's device in the Catalog (key "device/PEERID"): the
// certificate its user's home server issued, and whether that server has
// revoked it. Only the home server writes it.
type Device struct {
	Cert    []byte `cbor:"1,keyasint"` // signed DeviceCert (IssueDeviceCert)
	Revoked bool   `cbor:"2,keyasint"`
}

// Open verifies the device's certificate and returns it.
func (d Device) Open() (DeviceCert, error) { return OpenDeviceCert(d.Cert) }

func (Device) Collection() Kind { return Catalog }

// Key is "device/" and the certificate's device ID, or "" if the
// certificate does not open.
func (d Device) Key() string {
	c, err := d.Open()
	if err != nil {
		return ""
	}
	return DevicePrefix + c.Device
}

func (d Device) Validate() error { _, err := d.Open(); return err }

// authorizeDevice: a device record is written by the server that signed
// its certificate. Live, that server must be the user's current home
// server; historically (History), a server the chain had. A delete must
// follow a record by the same server.
func (s *State) authorizeDevice(u Update, v Value, author lpeer.ID, hist bool) error {
	if !s.isServer(author, hist) {
		return unauthorized("author is not a server in the chain")
	}
	if dev, ok := v.(Device); ok {
		c, err := dev.Open()
		if err != nil {
			return err
		}
		if c.Server != author.String() {
			return unauthorized("device certificate was issued by %s", c.Server)
		}
		if hist {
			return nil
		}
		home, ok := s.HomeServer(c.User)
		if !ok {
			return unauthorized("user %s is not a user of the domain", c.User)
		}
		if home != author {
			return unauthorized("user %s's home server is %s", c.User, home)
		}
		return nil
	}
	if hist {
		return nil
	}
	prev, _, exists := s.previous(Catalog, u.Key)
	if !exists {
		return unauthorized("no such device to delete")
	}
	if prev != author.String() {
		return unauthorized("device certificate was issued by %s", prev)
	}
	return nil
}

// Devices is every device record of the Catalog, revoked ones included,
// by device ID.
func (s *State) Devices() []Device { return each[Device](s, Catalog, DevicePrefix) }

// Device returns the record of device id and its opened certificate.
func (s *State) Device(id lpeer.ID) (Device, DeviceCert, bool) {
	d, ok := live[Device](s, Catalog, DevicePrefix+id.String())
	if !ok {
		return Device{}, DeviceCert{}, false
	}
	c, err := d.Open()
	if err != nil {
		return Device{}, DeviceCert{}, false // verified before it was applied
	}
	return d, c, true
}

// DevicesOf is every device record of user, revoked ones included, by
// device ID.
func (s *State) DevicesOf(user string) []Device {
	var out []Device
	for _, d := range s.Devices() {
		if c, err := d.Open(); err == nil && c.User == user {
			out = append(out, d)
		}
	}
	return out
}

// ValidDevice reports whether id is a device the domain accepts at now,
// and whose: its certificate opens, is not revoked and is current, its user
// still exists (the same identity: the user ID the certificate names, not
// only the name) and the certificate's server is still that user's home
// server.
func (s *State) ValidDevice(id lpeer.ID, now time.Time) (user string, ok bool) {
	d, c, ok := s.Device(id)
	if !ok || !s.validDevice(d, c, now) {
		return "", false
	}
	return c.User, true
}

func (s *State) validDevice(d Device, c DeviceCert, now time.Time) bool {
	if d.Revoked || !c.Current(now) {
		return false
	}
	u, ok := s.User(c.User)
	return ok && u.ID == c.UserID && u.HomeServer == c.Server
}

// ValidDevices is the certificate of every device ValidDevice accepts at
// now, by device ID.
func (s *State) ValidDevices(now time.Time) []DeviceCert {
	var out []DeviceCert
	for _, d := range s.Devices() {
		c, err := d.Open()
		if err == nil && s.validDevice(d, c, now) {
			out = append(out, c)
		}
	}
	return out
}
