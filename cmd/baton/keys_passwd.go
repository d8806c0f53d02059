package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/atomicfile"
)

func newKeysPasswdCmd(env *cliEnv) *cobra.Command {
	var (
		remove  bool
		newFile string
	)
	cmd := &cobra.Command{
		Use:   "passwd",
		Short: "Add, change or remove the host key's passphrase",
		Long: `Add a passphrase to the host key, change it, or remove it (--remove). The key
file is rewritten atomically; the key itself does not change.

The current passphrase, if any, comes from --passphrase-file, else
$BATON_PASSPHRASE, else the terminal. The new one is typed twice at the
terminal, or read from --new-passphrase-file for scripts.`,
		Example: `  baton keys passwd
  baton keys passwd --passphrase-file old.txt --new-passphrase-file new.txt
  baton keys passwd --remove`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if remove && newFile != "" {
				return usageErrorf("keys passwd: --remove and --new-passphrase-file do not go together")
			}
			_, keyPath, err := env.requireHostKey()
			if err != nil {
				return err
			}
			key, old, err := env.unlockKeyFile(cmd.Context(), keyPath, "host key "+keyPath)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if remove {
				if old == nil {
					fmt.Fprintf(w, "Host key %s is not encrypted: nothing to do\n", keyPath)
					return nil
				}
				if err := identity.SaveKeyFileKDF(keyPath, key, nil, env.kdf); err != nil {
					return err
				}
				fmt.Fprintf(w, "Removed the passphrase from %s: the key is stored unencrypted\n", keyPath)
				return nil
			}
			pass, err := env.newPassphrase(cmd.Context(), "host key "+keyPath, newFile, "--new-passphrase-file", false)
			if err != nil {
				return err
			}
			if err := identity.SaveKeyFileKDF(keyPath, key, pass, env.kdf); err != nil {
				return err
			}
			if old == nil {
				fmt.Fprintf(w, "Encrypted %s with the new passphrase\n", keyPath)
			} else {
				fmt.Fprintf(w, "Changed the passphrase of %s\n", keyPath)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&remove, "remove", false, "remove the passphrase: store the key unencrypted")
	cmd.Flags().StringVar(&newFile, "new-passphrase-file", "", "read the new passphrase from the first line of `FILE`")
	return cmd
}

func newKeysRotateCmd(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Replace the host key with a new one, signing a rotation statement with both",
		Long: `Generate a new host key and a rotation statement signed by the old key and
the new one, which lets peers accept the new ID for the same host.

The statement is written (armored) to <home>/rotations/<time>-<old ID>.rot;
hand it to your domain admin, along with a fresh 'baton keys export'. The old
key is kept as <home>/host.key.old-<old ID>. The new key is encrypted with the
same passphrase as the old one, or not at all if the old one was not.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, old, pass, err := env.loadHostKey(cmd.Context())
			if err != nil {
				return err
			}
			cfg, err := env.hostSettings(home)
			if err != nil {
				return err
			}
			next, err := identity.Generate(env.rand)
			if err != nil {
				return err
			}
			now := env.now()
			statement, err := identity.Rotate(cfg.Name, old, next, now)
			if err != nil {
				return err
			}
			armored, err := armorEnvelope(statement)
			if err != nil {
				return err
			}
			keyPath := filepath.Join(home, hostKeyFile)
			// Order: the new key and the statement are durable before the
			// old key is set aside and the new one takes its place, so a
			// crash never leaves the host without the key it is using.
			newPath := keyPath + ".new"
			if err := identity.SaveKeyFileKDF(newPath, next, pass, env.kdf); err != nil {
				return err
			}
			dir := filepath.Join(home, rotationsDir)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("saving rotation statement: %w", err)
			}
			rotPath := filepath.Join(dir, now.UTC().Format("20060102T150405Z")+"-"+old.ID().String()+".rot")
			if err := atomicfile.WriteFile(rotPath, armored, 0o644); err != nil {
				return fmt.Errorf("saving rotation statement: %w", err)
			}
			kept, err := env.keepOldKey(keyPath)
			if err != nil {
				return err
			}
			if err := os.Rename(newPath, keyPath); err != nil {
				return fmt.Errorf("installing the new host key: %w", err)
			}
			if err := atomicfile.SyncDir(home); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Rotated the host key of %s\n", cfg.Name)
			fmt.Fprintf(w, "  old: %s (%s), kept as %s\n", old.ID(), old.Fingerprint(), kept)
			fmt.Fprintf(w, "  new: %s (%s)\n", next.ID(), next.Fingerprint())
			fmt.Fprintf(w, "Rotation statement (give it to your domain admin, with a new 'baton keys export'):\n%s\n", rotPath)
			return nil
		},
	}
	return cmd
}
