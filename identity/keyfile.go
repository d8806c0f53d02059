package identity

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/baton-sync/baton/internal/atomicfile"
)

// Errors callers branch on when loading key files.
var (
	ErrPassphraseRequired  = errors.New("key file is encrypted: a passphrase is required")
	ErrWrongPassphrase     = errors.New("wrong passphrase")
	ErrInsecurePermissions = errors.New("key file permissions are too open")
	ErrCorruptKeyFile      = errors.New("corrupt key file")
)

// KDFParams are argon2id parameters for deriving a key-file encryption key.
type KDFParams struct {
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memory_kib"`
	Threads uint8  `json:"threads"`
}

// DefaultKDF is used by SaveKeyFile: 64 MiB, 3 passes, 2 lanes.
var DefaultKDF = KDFParams{Time: 3, Memory: 64 << 10, Threads: 2}

func (p KDFParams) validate() error {
	if p.Time < 1 || p.Time > 16 || p.Memory < 8<<3 || p.Memory > 1<<20 || p.Threads < 1 {
		return fmt.Errorf("argon2id parameters out of range (time %d, memory %d KiB, threads %d)", p.Time, p.Memory, p.Threads)
	}
	return nil
}

const keyFileVersion = 1

// keyFileAD is the AEAD additional data of an encrypted key file. It is fixed
// rather than the peer ID so that a file whose ID was altered decrypts and
// fails the ID check as corrupt, instead of looking like a wrong passphrase.
var keyFileAD = []byte("baton host key v1")

// sealedSeedSize is the ciphertext length of a sealed 32-byte seed.
const sealedSeedSize = 32 + chacha20poly1305.Overhead

// keyFile is the on-disk JSON form. The secret is the 32-byte Ed25519 seed,
// either in Seed (plaintext) or sealed in Ciphertext with XChaCha20-Poly1305
// under an argon2id key. The ID is checked against the decrypted key, so a
// re-labelled file is reported as corrupt rather than as a wrong passphrase.
type keyFile struct {
	Version    int        `json:"baton_host_key"`
	Type       string     `json:"type"`
	ID         string     `json:"id"`
	Seed       string     `json:"seed,omitempty"`
	KDF        *KDFParams `json:"argon2id,omitempty"`
	Salt       string     `json:"salt,omitempty"`
	Nonce      string     `json:"nonce,omitempty"`
	Ciphertext string     `json:"ciphertext,omitempty"`
}

// SaveKeyFile writes k to path atomically with mode 0600, encrypted with
// passphrase under DefaultKDF unless passphrase is empty.
func SaveKeyFile(path string, k *PrivateKey, passphrase []byte) error {
	return SaveKeyFileKDF(path, k, passphrase, DefaultKDF)
}

// SaveKeyFileKDF is SaveKeyFile with explicit argon2id parameters.
func SaveKeyFileKDF(path string, k *PrivateKey, passphrase []byte, kdf KDFParams) error {
	kf := keyFile{Version: keyFileVersion, Type: "ed25519", ID: k.ID().String()}
	if len(passphrase) == 0 {
		kf.Seed = base64.StdEncoding.EncodeToString(k.seed())
	} else {
		if err := kdf.validate(); err != nil {
			return fmt.Errorf("saving key file %s: %w", path, err)
		}
		salt := make([]byte, 16)
		nonce := make([]byte, chacha20poly1305.NonceSizeX)
		if _, err := rand.Read(salt); err != nil {
			return fmt.Errorf("saving key file %s: %w", path, err)
		}
		if _, err := rand.Read(nonce); err != nil {
			return fmt.Errorf("saving key file %s: %w", path, err)
		}
		aead, err := chacha20poly1305.NewX(argon2.IDKey(passphrase, salt, kdf.Time, kdf.Memory, kdf.Threads, chacha20poly1305.KeySize))
		if err != nil {
			return fmt.Errorf("saving key file %s: %w", path, err)
		}
		kf.KDF = &kdf
		kf.Salt = base64.StdEncoding.EncodeToString(salt)
		kf.Nonce = base64.StdEncoding.EncodeToString(nonce)
		kf.Ciphertext = base64.StdEncoding.EncodeToString(aead.Seal(nil, nonce, k.seed(), keyFileAD))
	}
	data, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return fmt.Errorf("saving key file %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving key file: %w", err)
	}
	return nil
}

// KeyFileInfo is what can be learnt from a key file without its passphrase.
type KeyFileInfo struct {
	ID        string
	Encrypted bool
}

// ReadKeyFileInfo reads a key file's ID and whether it is encrypted, after
// the same permission and format checks as LoadKeyFile.
func ReadKeyFileInfo(path string) (KeyFileInfo, error) {
	kf, err := readKeyFile(path)
	if err != nil {
		return KeyFileInfo{}, err
	}
	return KeyFileInfo{ID: kf.ID, Encrypted: kf.Ciphertext != ""}, nil
}

func readKeyFile(path string) (*keyFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("loading host key %s: %w (run 'baton keys gen' first)", path, err)
		}
		return nil, fmt.Errorf("loading host key %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("loading host key %s: %w: not a regular file", path, ErrCorruptKeyFile)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("loading host key %s: %w (mode %04o; fix with: chmod 600 %s)", path, ErrInsecurePermissions, st.Mode().Perm(), path)
	}
	if st.Size() > 64<<10 {
		return nil, fmt.Errorf("loading host key %s: %w: file is %d bytes", path, ErrCorruptKeyFile, st.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading host key %s: %w", path, err)
	}
	var kf keyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return nil, fmt.Errorf("loading host key %s: %w: %v", path, ErrCorruptKeyFile, err)
	}
	if kf.Version != keyFileVersion || kf.Type != "ed25519" {
		return nil, fmt.Errorf("loading host key %s: %w: not a baton ed25519 host key (version %d, type %q)", path, ErrCorruptKeyFile, kf.Version, kf.Type)
	}
	if (kf.Seed == "") == (kf.Ciphertext == "") {
		return nil, fmt.Errorf("loading host key %s: %w: needs exactly one of seed and ciphertext", path, ErrCorruptKeyFile)
	}
	return &kf, nil
}

// LoadKeyFile reads a key file, decrypting it with passphrase if it is
// encrypted. It refuses files readable or writable by group or others.
func LoadKeyFile(path string, passphrase []byte) (*PrivateKey, error) {
	kf, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	corrupt := func(what string, err error) error {
		return fmt.Errorf("loading host key %s: %w: %s: %v", path, ErrCorruptKeyFile, what, err)
	}
	var seed []byte
	if kf.Seed != "" {
		if seed, err = base64.StdEncoding.DecodeString(kf.Seed); err != nil {
			return nil, corrupt("seed", err)
		}
	} else {
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("loading host key %s: %w", path, ErrPassphraseRequired)
		}
		if kf.KDF == nil {
			return nil, corrupt("argon2id", errors.New("parameters missing"))
		}
		if err := kf.KDF.validate(); err != nil {
			return nil, corrupt("argon2id", err)
		}
		salt, err := base64.StdEncoding.DecodeString(kf.Salt)
		if err != nil || len(salt) < 16 {
			return nil, corrupt("salt", errors.New("want at least 16 base64 bytes"))
		}
		nonce, err := base64.StdEncoding.DecodeString(kf.Nonce)
		if err != nil || len(nonce) != chacha20poly1305.NonceSizeX {
			return nil, corrupt("nonce", fmt.Errorf("want %d base64 bytes", chacha20poly1305.NonceSizeX))
		}
		ct, err := base64.StdEncoding.DecodeString(kf.Ciphertext)
		if err != nil {
			return nil, corrupt("ciphertext", err)
		}
		if len(ct) != sealedSeedSize {
			return nil, corrupt("ciphertext", fmt.Errorf("%d bytes, want %d", len(ct), sealedSeedSize))
		}
		aead, err := chacha20poly1305.NewX(argon2.IDKey(passphrase, salt, kf.KDF.Time, kf.KDF.Memory, kf.KDF.Threads, chacha20poly1305.KeySize))
		if err != nil {
			return nil, corrupt("cipher", err)
		}
		if seed, err = aead.Open(nil, nonce, ct, keyFileAD); err != nil {
			return nil, fmt.Errorf("loading host key %s: %w", path, ErrWrongPassphrase)
		}
	}
	k, err := PrivateKeyFromSeed(seed)
	if err != nil {
		return nil, corrupt("key", err)
	}
	if k.ID().String() != kf.ID {
		return nil, corrupt("id", fmt.Errorf("key is %s but file says %s", k.ID(), kf.ID))
	}
	return k, nil
}
