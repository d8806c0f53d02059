package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/identity"
)

func newKeysCmd(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage this host's key: generate, show, export, import, re-encrypt, rotate, verify",
		Long: `Manage this host's key, <home>/host.key, and its settings, <home>/host.toml.

The key is an Ed25519 key whose public half is the host's libp2p peer ID. It
can be encrypted at rest with a passphrase; commands that need the private key
read the passphrase from --passphrase-file, else $BATON_PASSPHRASE, else a
terminal prompt.`,
		Args: groupArgs,
		RunE: groupRun,
	}
	cmd.AddCommand(
		newKeysGenCmd(env),
		newKeysShowCmd(env),
		newKeysExportCmd(env),
		newKeysImportCmd(env),
		newKeysPasswdCmd(env),
		newKeysRotateCmd(env),
		newKeysVerifyCmd(env),
	)
	return cmd
}

// hostFlags are the host settings 'keys gen' and 'keys import' can set.
type hostFlags struct {
	name         string
	role         string
	publicAddrs  []string
	privateAddrs []string
}

func (f *hostFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "host `NAME` (default: kept from host.toml, else the machine's host name)")
	fl.StringVar(&f.role, "role", "", "host `ROLE`: server or agent (default: kept from host.toml, else server)")
	fl.StringArrayVar(&f.publicAddrs, "public-addr", nil, "public `MULTIADDR` that desktop agents dial (repeatable; replaces the saved list)")
	fl.StringArrayVar(&f.privateAddrs, "private-addr", nil, "private `MULTIADDR` that servers dial (repeatable; replaces the saved list)")
}

// settings loads home's host.toml, applies the flags that were given and
// fills defaults. Bad flag values are usage errors.
func (f *hostFlags) settings(cmd *cobra.Command, env *cliEnv, home string) (hostConfig, error) {
	cfg, err := loadHostConfig(home)
	if err != nil {
		return cfg, err
	}
	fl := cmd.Flags()
	if fl.Changed("name") {
		if err := identity.ValidateName(f.name); err != nil {
			return cfg, usageErrorf("%s--name: %v", cmdPrefix(cmd), err)
		}
		cfg.Name = f.name
	}
	if fl.Changed("role") {
		if err := validateRole(f.role); err != nil {
			return cfg, usageErrorf("%s--role: %v", cmdPrefix(cmd), err)
		}
		cfg.Role = identity.Role(f.role)
	}
	if fl.Changed("public-addr") {
		cfg.PublicAddrs = f.publicAddrs
	}
	if fl.Changed("private-addr") {
		cfg.PrivateAddrs = f.privateAddrs
	}
	cfg.fillDefaults(env)
	if err := cfg.validate(); err != nil {
		if fl.Changed("public-addr") || fl.Changed("private-addr") {
			return cfg, usageError{fmt.Errorf("%s%w", cmdPrefix(cmd), err)}
		}
		return cfg, fmt.Errorf("%s: %w", filepath.Join(home, hostConfigFile), err)
	}
	return cfg, nil
}

func newKeysGenCmd(env *cliEnv) *cobra.Command {
	var (
		encrypt, force bool
		hf             hostFlags
	)
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Generate this host's key",
		Long: `Generate a new host key in <home>/host.key (mode 0600; the home is created
with mode 0700) and save the host's name, role and addresses in
<home>/host.toml. Prints the new peer ID and fingerprint.

With --encrypt the key is encrypted with a passphrase (argon2id and
XChaCha20-Poly1305), typed twice at the terminal or read from
--passphrase-file or $BATON_PASSPHRASE.

An existing key is never replaced without --force; with --force the old key
is kept as host.key.old-<ID>. To change keys and let peers follow, use
'baton keys rotate' instead.`,
		Example: `  baton keys gen
  baton keys gen --encrypt --name alpha --role server --public-addr /dns4/alpha.example.com/tcp/4001`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := env.homeDir()
			if err != nil {
				return err
			}
			if env.passphraseFile != "" && !encrypt {
				return usageErrorf("keys gen: --passphrase-file given without --encrypt")
			}
			cfg, err := hf.settings(cmd, env, home)
			if err != nil {
				return err
			}
			nk, err := env.newHostKey(cmd.Context(), home, cfg, encrypt, force)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Generated host key %s (%s)\n", nk.path, encryptedWord(nk.encrypted))
			fmt.Fprintf(w, "  id:          %s\n", nk.key.ID())
			fmt.Fprintf(w, "  fingerprint: %s\n", nk.key.Fingerprint())
			fmt.Fprintf(w, "  name:        %s (%s)\n", cfg.Name, cfg.Role)
			if nk.kept != "" {
				fmt.Fprintf(w, "  old key:     kept as %s\n", nk.kept)
			}
			fmt.Fprintf(w, "Next: 'baton keys export' writes the signed host record for your domain admin.\n")
			return nil
		},
	}
	cmd.Flags().BoolVar(&encrypt, "encrypt", false, "encrypt the key with a passphrase")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing key (the old one is kept as host.key.old-<ID>)")
	hf.bind(cmd)
	return cmd
}

// newKey is a key made by newHostKey.
type newKey struct {
	key       *identity.PrivateKey
	path      string // <home>/host.key
	encrypted bool
	kept      string // where a replaced key was kept, or ""
}

// newHostKey generates this host's key in home and saves cfg as host.toml:
// the work of 'keys gen' and 'init'. An existing key is replaced only with
// force, and then kept as host.key.old-<ID>. With encrypt, the passphrase
// comes from --passphrase-file, $BATON_PASSPHRASE or the terminal (twice).
func (e *cliEnv) newHostKey(ctx context.Context, home string, cfg hostConfig, encrypt, force bool) (newKey, error) {
	keyPath := filepath.Join(home, hostKeyFile)
	exists, err := fileExists(keyPath)
	if err != nil {
		return newKey{}, err
	}
	if exists && !force {
		return newKey{}, existingKeyError(keyPath)
	}
	var pass []byte
	if encrypt {
		if pass, err = e.newPassphrase(ctx, "the new host key", e.passphraseFile, "--passphrase-file", true); err != nil {
			return newKey{}, err
		}
		defer clear(pass)
	}
	key, err := identity.Generate(e.rand)
	if err != nil {
		return newKey{}, err
	}
	if err := makeHome(home); err != nil {
		return newKey{}, err
	}
	var kept string
	if exists {
		if kept, err = e.keepOldKey(keyPath); err != nil {
			return newKey{}, err
		}
	}
	if err := identity.SaveKeyFileKDF(keyPath, key, pass, e.kdf); err != nil {
		return newKey{}, err
	}
	if err := saveHostConfig(home, cfg); err != nil {
		return newKey{}, err
	}
	return newKey{key: key, path: keyPath, encrypted: len(pass) > 0, kept: kept}, nil
}

// keyInfo is 'keys show --json'. The field names are stable.
type keyInfo struct {
	ID           string   `json:"id"`
	Fingerprint  string   `json:"fingerprint"`
	PublicKey    string   `json:"public_key"` // raw 32-byte Ed25519 key, standard base64
	Encrypted    bool     `json:"encrypted"`
	Name         string   `json:"name"`
	Role         string   `json:"role"`
	PublicAddrs  []string `json:"public_addrs"`
	PrivateAddrs []string `json:"private_addrs"`
}

func newKeysShowCmd(env *cliEnv) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show this host's ID, fingerprint, public key and settings",
		Long: `Show the host's peer ID, fingerprint (read it aloud to compare keys),
public key (base64 of the raw Ed25519 key), whether the key file is encrypted,
and the name, role and addresses from host.toml. Needs no passphrase.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, keyPath, err := env.requireHostKey()
			if err != nil {
				return err
			}
			info, err := identity.ReadKeyFileInfo(keyPath)
			if err != nil {
				return err
			}
			pub, err := publicKeyFromIDString(info.ID)
			if err != nil {
				return fmt.Errorf("host key %s: %w: %w", keyPath, identity.ErrCorruptKeyFile, err)
			}
			cfg, err := env.hostSettings(home)
			if err != nil {
				return err
			}
			ki := keyInfo{
				ID:           info.ID,
				Fingerprint:  pub.Fingerprint(),
				PublicKey:    base64.StdEncoding.EncodeToString(pub.Raw()),
				Encrypted:    info.Encrypted,
				Name:         cfg.Name,
				Role:         string(cfg.Role),
				PublicAddrs:  nonNil(cfg.PublicAddrs),
				PrivateAddrs: nonNil(cfg.PrivateAddrs),
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(ki)
			}
			fmt.Fprintf(w, "id:            %s\n", ki.ID)
			fmt.Fprintf(w, "fingerprint:   %s\n", ki.Fingerprint)
			fmt.Fprintf(w, "public key:    %s (ed25519, base64)\n", ki.PublicKey)
			fmt.Fprintf(w, "encrypted:     %s\n", yesNo(ki.Encrypted))
			fmt.Fprintf(w, "name:          %s\n", ki.Name)
			fmt.Fprintf(w, "role:          %s\n", ki.Role)
			printAddrs(w, "public addrs:  ", ki.PublicAddrs)
			printAddrs(w, "private addrs: ", ki.PrivateAddrs)
			fmt.Fprintf(w, "key file:      %s\n", keyPath)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (fields: id, fingerprint, public_key, encrypted, name, role, public_addrs, private_addrs)")
	return cmd
}

func newKeysImportCmd(env *cliEnv) *cobra.Command {
	var (
		force bool
		hf    hostFlags
	)
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Install a host key file from another machine as this host's key",
		Long: `Install FILE, a baton host key file (as written by 'baton keys gen' on another
machine), as <home>/host.key. The file is checked first: if it is encrypted,
its passphrase is asked for (or read from --passphrase-file or
$BATON_PASSPHRASE). It is copied as is, so it stays encrypted with the same
passphrase. FILE must not be readable by group or others.

An existing key is never replaced without --force; with --force the old key
is kept as host.key.old-<ID>. host.toml is created if missing and updated
with any of --name, --role, --public-addr and --private-addr.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := args[0]
			if _, err := os.Stat(src); err != nil {
				return fmt.Errorf("importing host key: %w", err)
			}
			home, err := env.homeDir()
			if err != nil {
				return err
			}
			keyPath := filepath.Join(home, hostKeyFile)
			if same, err := sameFile(src, keyPath); err != nil {
				return err
			} else if same {
				return fmt.Errorf("%s is already this host's key", src)
			}
			cfg, err := hf.settings(cmd, env, home)
			if err != nil {
				return err
			}
			exists, err := fileExists(keyPath)
			if err != nil {
				return err
			}
			if exists && !force {
				return existingKeyError(keyPath)
			}
			key, pass, err := env.unlockKeyFile(cmd.Context(), src, "key file "+src)
			if err != nil {
				return err
			}
			encrypted := pass != nil
			clear(pass)
			if err := makeHome(home); err != nil {
				return err
			}
			var kept string
			if exists {
				if kept, err = env.keepOldKey(keyPath); err != nil {
					return err
				}
			}
			if err := copyKeyFile(src, keyPath); err != nil {
				return err
			}
			if err := saveHostConfig(home, cfg); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Imported %s as host key %s (%s)\n", src, keyPath, encryptedWord(encrypted))
			fmt.Fprintf(w, "  id:          %s\n", key.ID())
			fmt.Fprintf(w, "  fingerprint: %s\n", key.Fingerprint())
			fmt.Fprintf(w, "  name:        %s (%s)\n", cfg.Name, cfg.Role)
			if kept != "" {
				fmt.Fprintf(w, "  old key:     kept as %s\n", kept)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing key (the old one is kept as host.key.old-<ID>)")
	hf.bind(cmd)
	return cmd
}

func existingKeyError(keyPath string) error {
	msg := fmt.Sprintf("%s already exists", keyPath)
	if info, err := identity.ReadKeyFileInfo(keyPath); err == nil {
		msg += " (host " + info.ID + ")"
	}
	return fmt.Errorf("%s: give --force to replace it, or use 'baton keys rotate' to change keys so peers can follow", msg)
}

func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

// sameFile reports whether a and b are the same existing file.
func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

func publicKeyFromIDString(s string) (identity.PublicKey, error) {
	id, err := lpeer.Decode(s)
	if err != nil {
		return identity.PublicKey{}, fmt.Errorf("peer ID %q: %v", s, err)
	}
	return identity.PublicKeyFromID(id)
}

func printAddrs(w io.Writer, label string, addrs []string) {
	if len(addrs) == 0 {
		fmt.Fprintf(w, "%s(none)\n", label)
		return
	}
	for i, a := range addrs {
		if i > 0 {
			label = "               "
		}
		fmt.Fprintf(w, "%s%s\n", label, a)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func encryptedWord(b bool) string {
	if b {
		return "encrypted"
	}
	return "not encrypted"
}
