package identity_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
)

func ExampleSeal() {
	key := identitytest.Key("s1") // in real use: identity.Generate(rand.Reader)

	env, err := identity.Seal(identity.PurposeUpdate, []byte("hello, domain"), key)
	if err != nil {
		fmt.Println(err)
		return
	}
	wire, _ := env.Marshal() // send or store these bytes

	received, err := identity.UnmarshalEnvelope(wire)
	if err != nil {
		fmt.Println(err)
		return
	}
	signers, err := received.Open(identity.PurposeUpdate)
	fmt.Printf("payload %q, signed by %s: %v\n", received.Payload, signers[0].ID(), err)

	// The same envelope never opens for another purpose.
	_, err = received.Open(identity.PurposeHostRecord)
	fmt.Println(errors.Is(err, identity.ErrWrongPurpose))
	// Output:
	// payload "hello, domain", signed by 12D3KooWSFbk4Qrkw9yKafnwQn7EC9bU44MoT48XYr6xRgDDUFdJ: <nil>
	// true
}

func ExampleSignHostRecord() {
	key := identitytest.Key("s1")
	rec := identity.HostRecord{
		Name:         "s1",
		PublicKey:    key.Public(),
		PublicAddrs:  []string{"/dns4/s1.example.com/tcp/4001"},
		PrivateAddrs: []string{"/ip4/10.0.0.1/tcp/4001"},
		Role:         identity.RoleServer,
		Issued:       time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano(),
	}
	env, err := identity.SignHostRecord(key, rec)
	if err != nil {
		fmt.Println(err)
		return
	}

	got, err := identity.OpenHostRecord(env)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Name, got.Role, got.ID(), got.PublicAddrs, got.IssuedAt())
	fmt.Println(key.Fingerprint())

	// Change one byte and the record no longer opens.
	env.Payload[len(env.Payload)-1] ^= 1
	_, err = identity.OpenHostRecord(env)
	fmt.Println(errors.Is(err, identity.ErrBadSignature))
	// Output:
	// s1 server 12D3KooWSFbk4Qrkw9yKafnwQn7EC9bU44MoT48XYr6xRgDDUFdJ [/dns4/s1.example.com/tcp/4001] 2025-01-02 03:04:05 +0000 UTC
	// YBFX0-DYZ2Y-QA53D-P99HM-XFT4A
	// true
}

func ExampleRotate() {
	old, new := identitytest.Key("s1"), identitytest.Key("s1-2")
	env, err := identity.Rotate("s1", old, new, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		fmt.Println(err)
		return
	}
	rot, err := identity.OpenRotation(env)
	fmt.Println(rot.Name, rot.Old.ID() == old.ID(), rot.New.ID() == new.ID(), err)
	// Output:
	// s1 true true <nil>
}
