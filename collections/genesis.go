package collections

import (
	"fmt"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/zeebo/blake3"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/canon"
)

// MaxGenesisSize caps an encoded genesis.
const MaxGenesisSize = 4 << 20

// Genesis is a domain's founding statement, signed by the first server of
// its chain (PurposeGenesis): the domain record, the chain and the member
// host records every replica starts from. Obtain one with OpenGenesis; only
// an opened Genesis can seed a State.
type Genesis struct {
	Domain  DomainInfo `cbor:"1,keyasint"`
	Chain   Chain      `cbor:"2,keyasint"`
	Hosts   [][]byte   `cbor:"3,keyasint"` // signed host records (Host.Record)
	Created int64      `cbor:"4,keyasint"` // unix nanoseconds

	raw  []byte   // the verified envelope, set by OpenGenesis
	hash [32]byte // hash of raw
}

// NewGenesis builds and signs a genesis with key, which must be the first
// server of chain. Every server of the chain needs a host record with role
// server among hosts. It returns the signed bytes, which OpenGenesis reads.
func NewGenesis(key *identity.PrivateKey, domain DomainInfo, chain Chain, hosts [][]byte, created time.Time) ([]byte, error) {
	g := Genesis{Domain: domain, Chain: chain, Hosts: hosts, Created: created.UnixNano()}
	if len(chain.Servers) == 0 || chain.Servers[0] != key.ID().String() {
		return nil, fmt.Errorf("%w: genesis must be signed by the first server of the chain", ErrUnauthorized)
	}
	if _, err := g.validate(); err != nil {
		return nil, err
	}
	payload, err := canon.Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("encoding genesis: %w", err)
	}
	env, err := identity.Seal(identity.PurposeGenesis, payload, key)
	if err != nil {
		return nil, fmt.Errorf("signing genesis: %w", err)
	}
	raw, err := env.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encoding genesis: %w", err)
	}
	if len(raw) > MaxGenesisSize {
		return nil, fmt.Errorf("%w: genesis is %d bytes, limit %d", ErrTooLarge, len(raw), MaxGenesisSize)
	}
	return raw, nil
}

// OpenGenesis decodes and verifies a signed genesis: the signature by the
// first server of its chain, every host record, and the chain rules.
func OpenGenesis(data []byte) (Genesis, error) {
	if len(data) > MaxGenesisSize {
		return Genesis{}, fmt.Errorf("%w: genesis is %d bytes, limit %d", ErrTooLarge, len(data), MaxGenesisSize)
	}
	env, err := identity.UnmarshalEnvelope(data)
	if err != nil {
		return Genesis{}, fmt.Errorf("%w: genesis: %v", ErrMalformed, err)
	}
	if err := mustBeCanonical(data, env); err != nil {
		return Genesis{}, fmt.Errorf("genesis: %w", err)
	}
	signers, err := env.Open(identity.PurposeGenesis)
	if err != nil {
		return Genesis{}, sigErr("genesis", err)
	}
	var g Genesis
	if err := decodeCanonical(env.Payload, &g, MaxGenesisSize); err != nil {
		return Genesis{}, fmt.Errorf("genesis: %w", err)
	}
	if _, err := g.validate(); err != nil {
		return Genesis{}, err
	}
	if len(signers) != 1 || signers[0].ID().String() != g.Chain.Servers[0] {
		return Genesis{}, fmt.Errorf("%w: %w: genesis is not signed by the first server of its chain", ErrBadSignature, identity.ErrWrongSigner)
	}
	g.raw = append([]byte(nil), data...)
	g.hash = blake3.Sum256(g.raw)
	return g, nil
}

// Marshal returns the signed genesis bytes of an opened genesis (nil
// otherwise). The caller must not modify them.
func (g Genesis) Marshal() []byte { return g.raw }

// Hash identifies the genesis, and so the domain: BLAKE3 of its signed bytes.
func (g Genesis) Hash() [32]byte { return g.hash }

// Signer is the peer ID of the genesis's signer, the first server of the chain.
func (g Genesis) Signer() lpeer.ID {
	if len(g.Chain.Servers) == 0 {
		return ""
	}
	id, _ := lpeer.Decode(g.Chain.Servers[0])
	return id
}

// CreatedAt is Created as a time.
func (g Genesis) CreatedAt() time.Time { return time.Unix(0, g.Created).UTC() }

// validate checks the genesis and returns its host records by peer ID.
func (g Genesis) validate() (map[string]identity.HostRecord, error) {
	if err := g.Domain.Validate(); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	if err := g.Chain.Validate(); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	if err := g.Domain.Settings.checkChainRule(len(g.Chain.Servers)); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	if len(g.Hosts) > 4096 {
		return nil, fmt.Errorf("%w: genesis lists %d hosts", ErrTooLarge, len(g.Hosts))
	}
	hosts := make(map[string]identity.HostRecord, len(g.Hosts))
	for i, b := range g.Hosts {
		r, err := Host{Record: b}.Open()
		if err != nil {
			return nil, fmt.Errorf("genesis host %d: %w", i, err)
		}
		id := r.ID().String()
		if _, dup := hosts[id]; dup {
			return nil, fmt.Errorf("%w: genesis lists host %s twice", ErrMalformed, id)
		}
		hosts[id] = r
	}
	for _, s := range g.Chain.Servers {
		r, ok := hosts[s]
		if !ok {
			return nil, fmt.Errorf("%w: genesis chain server %s has no host record", ErrMalformed, s)
		}
		if r.Role != identity.RoleServer {
			return nil, fmt.Errorf("%w: genesis chain server %s (%s) has role %s", ErrMalformed, r.Name, s, r.Role)
		}
	}
	return hosts, nil
}
