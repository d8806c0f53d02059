package identity_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
)

// secretForms are the ways the secret of Key(name) could leak in text.
func secretForms(name string) map[string]string {
	seed := identitytest.Seed(name)
	pub := identitytest.Key(name).Public().Raw()
	full := append(bytes.Clone(seed), pub...) // the 64-byte ed25519 private key
	forms := map[string]string{}
	for what, b := range map[string][]byte{"seed": seed, "private key": full} {
		forms[what+" hex"] = hex.EncodeToString(b)
		forms[what+" HEX"] = strings.ToUpper(hex.EncodeToString(b))
		forms[what+" base64"] = base64.StdEncoding.EncodeToString(b)
		forms[what+" base64url"] = base64.RawURLEncoding.EncodeToString(b)
		forms[what+" raw"] = string(b)
		forms[what+" go bytes"] = strings.Trim(fmt.Sprint([]byte(b)), "[]")
		forms[what+" go hex bytes"] = strings.Trim(fmt.Sprintf("%#v", []byte(b)), "[]byte{}")
	}
	// A prefix is enough to leak: look for the first 8 bytes of the seed.
	forms["seed prefix hex"] = hex.EncodeToString(seed[:8])
	forms["seed prefix decimal"] = strings.Trim(fmt.Sprint(seed[:8]), "[]")
	return forms
}

func TestPrivateKeyNeverPrints(t *testing.T) {
	k := identitytest.Key("alice")
	type holder struct {
		Name string
		Key  *identity.PrivateKey
	}
	type valueHolder struct {
		Key identity.PrivateKey
	}
	type hidden struct {
		key  *identity.PrivateKey
		val  identity.PrivateKey
		anyk any
	}
	var outputs = map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		outputs["Sprintf "+verb] = fmt.Sprintf(verb, k)
		outputs["Sprintf holder "+verb] = fmt.Sprintf(verb, holder{"alice", k})
		outputs["Sprintf &holder "+verb] = fmt.Sprintf(verb, &holder{"alice", k})
		outputs["Sprintf value "+verb] = fmt.Sprintf(verb, *k)
		outputs["Sprintf valueHolder "+verb] = fmt.Sprintf(verb, valueHolder{*k})
		outputs["Sprintf slice "+verb] = fmt.Sprintf(verb, []*identity.PrivateKey{k})
		outputs["Sprintf map "+verb] = fmt.Sprintf(verb, map[string]any{"k": k})
		outputs["Sprintf hidden "+verb] = fmt.Sprintf(verb, hidden{k, *k, k})
		outputs["Sprintf &hidden "+verb] = fmt.Sprintf(verb, &hidden{k, *k, *k})
	}
	outputs["Sprint"] = fmt.Sprint(k)
	outputs["Sprintln"] = fmt.Sprintln(k, *k)
	outputs["String"] = k.String()
	outputs["GoString"] = k.GoString()
	outputs["Errorf %w-free"] = fmt.Errorf("with %v", k).Error()

	for _, v := range []any{k, *k, holder{"alice", k}, &holder{"alice", k}, valueHolder{*k}, &valueHolder{*k}} {
		b, err := json.Marshal(v)
		outputs[fmt.Sprintf("json %T", v)] = string(b) + fmt.Sprint(err)
		b, err = json.MarshalIndent(v, "", " ")
		outputs[fmt.Sprintf("json indent %T", v)] = string(b) + fmt.Sprint(err)
	}
	if b, err := k.MarshalText(); err == nil || len(b) != 0 {
		t.Errorf("MarshalText() = %q, %v; want nothing and an error", b, err)
	}

	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("key", "key", k, "value", *k, "holder", holder{"alice", k}, "group", slog.Group("g", "k", k))
		log.Info("any", slog.Any("key", k))
		outputs["slog "+name] = buf.String()
	}

	secrets := secretForms("alice")
	for where, out := range outputs {
		for what, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Errorf("%s = %q; leaks the %s", where, out, what)
			}
		}
	}
	if got := fmt.Sprint(k); !strings.Contains(got, "redacted") {
		t.Errorf("fmt.Sprint(key) = %q; want it to say redacted", got)
	}
}

func TestPrivateKeyFromSeed(t *testing.T) {
	k, err := identity.PrivateKeyFromSeed(identitytest.Seed("alice"))
	if err != nil {
		t.Fatalf("PrivateKeyFromSeed error = %v", err)
	}
	if !k.Equal(identitytest.Key("alice")) {
		t.Errorf("PrivateKeyFromSeed(Seed(alice)) = %s; want %s", k.ID(), identitytest.Key("alice").ID())
	}
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := identity.PrivateKeyFromSeed(make([]byte, n)); !errors.Is(err, identity.ErrBadKey) {
			t.Errorf("PrivateKeyFromSeed(%d bytes) = %v; want ErrBadKey", n, err)
		}
	}
}

func TestPublicKeyForms(t *testing.T) {
	k := identitytest.Key("alice")
	pub := k.Public()
	if pub.IsZero() {
		t.Fatal("Public().IsZero() = true; want false")
	}
	if got := len(pub.Raw()); got != 32 {
		t.Errorf("len(Raw()) = %d; want 32", got)
	}
	parsed, err := identity.ParsePublicKey(pub.Raw())
	if err != nil || !parsed.Equal(pub) {
		t.Errorf("ParsePublicKey(Raw()) = %v, %v; want %v", parsed, err, pub)
	}
	fromID, err := identity.PublicKeyFromID(k.ID())
	if err != nil || !fromID.Equal(pub) {
		t.Errorf("PublicKeyFromID(ID()) = %v, %v; want %v", fromID, err, pub)
	}
	if pub.String() != k.ID().String() {
		t.Errorf("String() = %s; want the peer ID %s", pub.String(), k.ID())
	}
	if !k.Equal(identitytest.Key("alice")) || k.Equal(identitytest.Key("bob")) || k.Equal(nil) {
		t.Error("PrivateKey.Equal does not tell keys apart")
	}
	if (*identity.PrivateKey)(nil).Equal(nil) != true {
		t.Error("nil.Equal(nil) = false; want true")
	}
	var zero identity.PublicKey
	if !zero.IsZero() || zero.Raw() != nil || zero.ID() != "" || zero.Equal(pub) {
		t.Errorf("zero PublicKey = %v; want IsZero, no raw bytes, no ID, unequal to a real key", zero)
	}
	for _, n := range []int{0, 31, 33} {
		if _, err := identity.ParsePublicKey(make([]byte, n)); !errors.Is(err, identity.ErrBadKey) {
			t.Errorf("ParsePublicKey(%d bytes) = %v; want ErrBadKey", n, err)
		}
	}
	if _, err := identity.PublicKeyFromID("not a peer id"); !errors.Is(err, identity.ErrBadKey) {
		t.Errorf("PublicKeyFromID(garbage) = %v; want ErrBadKey", err)
	}
}
