package identity_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/identity/identitytest"
)

var passphrase = []byte("correct horse battery staple")

func saveKey(t *testing.T, name string, pass []byte) (string, *identity.PrivateKey) {
	t.Helper()
	k := identitytest.Key(name)
	path := filepath.Join(t.TempDir(), "host.key")
	if err := identity.SaveKeyFileKDF(path, k, pass, identitytest.FastKDF); err != nil {
		t.Fatalf("SaveKeyFileKDF(%s) error = %v", path, err)
	}
	return path, k
}

func TestKeyFileRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name string
		pass []byte
	}{{"plaintext", nil}, {"encrypted", passphrase}} {
		t.Run(c.name, func(t *testing.T) {
			path, k := saveKey(t, "alice", c.pass)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Mode().Perm(); got != 0o600 {
				t.Errorf("mode of saved key file = %04o; want 0600", got)
			}
			got, err := identity.LoadKeyFile(path, c.pass)
			if err != nil {
				t.Fatalf("LoadKeyFile error = %v; want nil", err)
			}
			if !got.Equal(k) {
				t.Errorf("LoadKeyFile = %s; want %s", got.ID(), k.ID())
			}
			info, err := identity.ReadKeyFileInfo(path)
			if err != nil {
				t.Fatalf("ReadKeyFileInfo error = %v", err)
			}
			want := identity.KeyFileInfo{ID: k.ID().String(), Encrypted: c.pass != nil}
			if info != want {
				t.Errorf("ReadKeyFileInfo = %+v; want %+v", info, want)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if c.pass != nil {
				for what, secret := range secretForms("alice") {
					if strings.Contains(string(data), secret) {
						t.Errorf("encrypted key file contains the %s:\n%s", what, data)
					}
				}
			}
		})
	}
}

func TestSaveKeyFileDefaultKDF(t *testing.T) {
	if testing.Short() {
		t.Skip("DefaultKDF takes 64 MiB and a noticeable fraction of a second")
	}
	k := identitytest.Key("alice")
	path := filepath.Join(t.TempDir(), "host.key")
	if err := identity.SaveKeyFile(path, k, passphrase); err != nil {
		t.Fatalf("SaveKeyFile error = %v", err)
	}
	got, err := identity.LoadKeyFile(path, passphrase)
	if err != nil || !got.Equal(k) {
		t.Fatalf("LoadKeyFile(SaveKeyFile) = %v, %v; want the key", got, err)
	}
}

func TestSaveKeyFileRejectsBadKDF(t *testing.T) {
	for _, kdf := range []identity.KDFParams{
		{},
		{Time: 0, Memory: 64, Threads: 1},
		{Time: 1, Memory: 8, Threads: 1},
		{Time: 1, Memory: 64, Threads: 0},
		{Time: 65, Memory: 64, Threads: 1},
	} {
		path := filepath.Join(t.TempDir(), "host.key")
		if err := identity.SaveKeyFileKDF(path, identitytest.Key("a"), passphrase, kdf); err == nil {
			t.Errorf("SaveKeyFileKDF(%+v) = nil; want an error", kdf)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("SaveKeyFileKDF(%+v) left a file behind (stat error %v)", kdf, err)
		}
	}
}

func TestLoadKeyFilePassphrase(t *testing.T) {
	path, _ := saveKey(t, "alice", passphrase)
	cases := []struct {
		pass []byte
		want error
	}{
		{nil, identity.ErrPassphraseRequired},
		{[]byte{}, identity.ErrPassphraseRequired},
		{[]byte("wrong"), identity.ErrWrongPassphrase},
		{append([]byte(nil), append(passphrase, ' ')...), identity.ErrWrongPassphrase},
		{passphrase[:len(passphrase)-1], identity.ErrWrongPassphrase},
	}
	for _, c := range cases {
		k, err := identity.LoadKeyFile(path, c.pass)
		if !errors.Is(err, c.want) {
			t.Errorf("LoadKeyFile(%q) = %v, %v; want %v", c.pass, k, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("LoadKeyFile(%q) error %q does not name %s", c.pass, err, path)
		}
	}
	// A plaintext file ignores a passphrase.
	plain, k := saveKey(t, "bob", nil)
	if got, err := identity.LoadKeyFile(plain, passphrase); err != nil || !got.Equal(k) {
		t.Errorf("LoadKeyFile(plaintext, passphrase) = %v, %v; want the key", got, err)
	}
}

func TestLoadKeyFileInsecurePermissions(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Log("running as root: permission bits still checked")
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o666, 0o602, 0o620} {
		path, _ := saveKey(t, "alice", nil)
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := identity.LoadKeyFile(path, nil)
		if !errors.Is(err, identity.ErrInsecurePermissions) {
			t.Errorf("LoadKeyFile(mode %04o) = %v; want ErrInsecurePermissions", mode, err)
			continue
		}
		if !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("LoadKeyFile(mode %04o) error = %q; want it to say chmod 600 %s", mode, err, path)
		}
		if _, err := identity.ReadKeyFileInfo(path); !errors.Is(err, identity.ErrInsecurePermissions) {
			t.Errorf("ReadKeyFileInfo(mode %04o) = %v; want ErrInsecurePermissions", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		path, k := saveKey(t, "alice", nil)
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if got, err := identity.LoadKeyFile(path, nil); err != nil || !got.Equal(k) {
			t.Errorf("LoadKeyFile(mode %04o) = %v, %v; want the key", mode, got, err)
		}
	}
}

func TestLoadKeyFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "host.key")
	_, err := identity.LoadKeyFile(path, nil)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadKeyFile(missing) = %v; want fs.ErrNotExist naming %s", err, path)
	}
	if _, err := identity.ReadKeyFileInfo(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadKeyFileInfo(missing) = %v; want fs.ErrNotExist", err)
	}
}

func TestLoadKeyFileNotRegular(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dir.key")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := identity.LoadKeyFile(dir, nil); !errors.Is(err, identity.ErrCorruptKeyFile) {
		t.Errorf("LoadKeyFile(directory) = %v; want ErrCorruptKeyFile", err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo.key")
	if err := mkfifo(fifo); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Must not block reading the pipe.
	if _, err := identity.LoadKeyFile(fifo, nil); !errors.Is(err, identity.ErrCorruptKeyFile) {
		t.Errorf("LoadKeyFile(fifo) = %v; want ErrCorruptKeyFile", err)
	}
}

// editKeyFile rewrites the JSON of the key file at path with edit.
func editKeyFile(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadKeyFileCorrupt(t *testing.T) {
	otherID := identitytest.Key("mallory").ID().String()
	b64 := base64.StdEncoding.EncodeToString
	raw := func(data string) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	edit := func(f func(map[string]any)) func(t *testing.T, path string) {
		return func(t *testing.T, path string) { editKeyFile(t, path, f) }
	}
	cases := []struct {
		name      string
		encrypted bool
		corrupt   func(t *testing.T, path string)
	}{
		{"empty", false, raw("")},
		{"not json", false, raw("ed25519 key")},
		{"truncated json", false, raw(`{"baton_host_key": 1, "type": "ed25519"`)},
		{"json array", false, raw(`[]`)},
		{"too large", false, raw(`{"x":"` + strings.Repeat("a", 70<<10) + `"}`)},
		{"version 0", false, edit(func(m map[string]any) { delete(m, "baton_host_key") })},
		{"version 2", false, edit(func(m map[string]any) { m["baton_host_key"] = 2 })},
		{"version string", false, edit(func(m map[string]any) { m["baton_host_key"] = "1" })},
		{"wrong type", false, edit(func(m map[string]any) { m["type"] = "rsa" })},
		{"swapped id", false, edit(func(m map[string]any) { m["id"] = otherID })},
		{"garbage id", false, edit(func(m map[string]any) { m["id"] = "not-an-id" })},
		{"seed not base64", false, edit(func(m map[string]any) { m["seed"] = "!!!" })},
		{"seed short", false, edit(func(m map[string]any) { m["seed"] = b64(make([]byte, 31)) })},
		{"seed long", false, edit(func(m map[string]any) { m["seed"] = b64(make([]byte, 64)) })},
		{"seed of another key", false, edit(func(m map[string]any) { m["seed"] = b64(identitytest.Seed("mallory")) })},
		{"no secret", false, edit(func(m map[string]any) { delete(m, "seed") })},
		{"seed and ciphertext", false, edit(func(m map[string]any) { m["ciphertext"] = "AAAA" })},
		{"encrypted swapped id", true, edit(func(m map[string]any) { m["id"] = otherID })},
		{"encrypted truncated ciphertext", true, edit(func(m map[string]any) {
			ct, _ := base64.StdEncoding.DecodeString(m["ciphertext"].(string))
			m["ciphertext"] = b64(ct[:len(ct)-1])
		})},
		{"encrypted empty ciphertext", true, edit(func(m map[string]any) { m["ciphertext"] = "" })},
		{"encrypted ciphertext not base64", true, edit(func(m map[string]any) { m["ciphertext"] = "%%%%" })},
		{"encrypted no kdf", true, edit(func(m map[string]any) { delete(m, "argon2id") })},
		{"encrypted kdf zero", true, edit(func(m map[string]any) { m["argon2id"] = map[string]any{} })},
		{"encrypted kdf huge", true, edit(func(m map[string]any) {
			m["argon2id"] = map[string]any{"time": 1, "memory_kib": 1 << 30, "threads": 1}
		})},
		{"encrypted short salt", true, edit(func(m map[string]any) { m["salt"] = b64(make([]byte, 8)) })},
		{"encrypted no salt", true, edit(func(m map[string]any) { delete(m, "salt") })},
		{"encrypted short nonce", true, edit(func(m map[string]any) { m["nonce"] = b64(make([]byte, 12)) })},
		{"encrypted nonce not base64", true, edit(func(m map[string]any) { m["nonce"] = "?" })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var pass []byte
			if c.encrypted {
				pass = passphrase
			}
			path, _ := saveKey(t, "alice", pass)
			c.corrupt(t, path)
			k, err := identity.LoadKeyFile(path, pass)
			if !errors.Is(err, identity.ErrCorruptKeyFile) {
				t.Fatalf("LoadKeyFile(%s) = %v, %v; want ErrCorruptKeyFile", c.name, k, err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("LoadKeyFile(%s) error %q does not name %s", c.name, err, path)
			}
		})
	}
}

func TestSaveKeyFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "host.key")
	// An existing, too-open file is replaced by a 0600 one.
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"alice", "bob", "carol"} {
		pass := passphrase
		if i%2 == 1 {
			pass = nil
		}
		if err := identity.SaveKeyFileKDF(path, identitytest.Key(name), pass, identitytest.FastKDF); err != nil {
			t.Fatalf("SaveKeyFileKDF(%s) error = %v", name, err)
		}
		got, err := identity.LoadKeyFile(path, pass)
		if err != nil || !got.Equal(identitytest.Key(name)) {
			t.Fatalf("LoadKeyFile after saving %s = %v, %v; want %s's key", name, got, err, name)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "host.key" {
		t.Errorf("directory after saves holds %q; want only host.key", names)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode after replacing a 0644 file = %04o; want 0600", st.Mode().Perm())
	}

	// A save that fails (missing directory) leaves nothing behind.
	bad := filepath.Join(dir, "missing", "host.key")
	if err := identity.SaveKeyFileKDF(bad, identitytest.Key("a"), nil, identitytest.FastKDF); err == nil {
		t.Errorf("SaveKeyFileKDF(%s) = nil; want an error", bad)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory after a failed save holds %d entries; want 1", len(entries))
	}
}

// The passphrase is the caller's: saving and loading must not keep or alter it.
func TestKeyFileDoesNotModifyPassphrase(t *testing.T) {
	pass := []byte("pass")
	path, _ := saveKey(t, "alice", pass)
	if _, err := identity.LoadKeyFile(path, pass); err != nil {
		t.Fatal(err)
	}
	if string(pass) != "pass" {
		t.Errorf("passphrase after save and load = %q; want %q", pass, "pass")
	}
}
