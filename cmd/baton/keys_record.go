package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-sync/baton/identity"
	"github.com/baton-sync/baton/internal/atomicfile"
)

func newKeysExportCmd(env *cliEnv) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write this host's signed host record, for handing to a domain admin",
		Long: `Sign a host record with the host key (so it needs the passphrase if the key
is encrypted) and write it armored:

  -----BEGIN BATON SIGNED RECORD-----
  ...base64...
  -----END BATON SIGNED RECORD-----

The record holds the host's name, public key (and so its peer ID), role,
public and private addresses (from host.toml) and the time it was signed.
Other hosts dial only the addresses in the record: with no public_addrs and
no private_addrs in host.toml, the listen addresses with a specific IP and
port are recorded as private addresses.
Anyone can check it with 'baton keys verify'.`,
		Example: `  baton keys export -o alpha.host
  baton keys export | mail -s "new host" admin@example.com`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, key, _, err := env.loadHostKey(cmd.Context())
			if err != nil {
				return err
			}
			cfg, err := env.hostSettings(home)
			if err != nil {
				return err
			}
			public, private := cfg.recordAddrs()
			if len(public) == 0 && len(private) == 0 {
				fmt.Fprintf(env.stderr, "baton: warning: the host record has no addresses, so other hosts cannot dial this one: set public_addrs or private_addrs (or a listen address with a specific IP and port) in %s\n", filepath.Join(home, hostConfigFile))
			}
			env0, err := identity.SignHostRecord(key, identity.HostRecord{
				Name:         cfg.Name,
				PublicKey:    key.Public(),
				PublicAddrs:  public,
				PrivateAddrs: private,
				Role:         cfg.Role,
				Issued:       env.now().UnixNano(),
			})
			if err != nil {
				return fmt.Errorf("signing host record (check %s/%s): %w", home, hostConfigFile, err)
			}
			data, err := armorEnvelope(env0)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err := cmd.OutOrStdout().Write(data)
				return err
			}
			if err := atomicfile.WriteFile(out, data, 0o644); err != nil {
				return fmt.Errorf("exporting host record: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote the signed host record of %s (%s) to %s\n", cfg.Name, key.ID(), out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to `FILE` instead of stdout")
	return cmd
}

// maxRecordFile caps how much 'keys verify' reads: an envelope's limit plus
// its base64 and armor overhead.
const maxRecordFile = identity.MaxEnvelopeSize*4/3 + 64<<10

func newKeysVerifyCmd(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a signed record or rotation statement and say who signed it",
		Long: `Read a signed baton record (armored, or raw CBOR; FILE "-" is stdin), check
every signature on it, and say what it is and who signed it: for a host record
the host's name, ID, fingerprint, role and addresses; for a key rotation the
old and new keys. A record that does not verify is an error (exit code 1).

verify says that the keys named in the record signed it; whether you trust
those keys is up to you: compare fingerprints with the host's owner.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			data, err := readRecordFile(env, name)
			if err != nil {
				return err
			}
			e, err := decodeEnvelope(data)
			if err != nil {
				return fmt.Errorf("%s: not a baton signed record: %w", name, err)
			}
			return describeEnvelope(cmd.OutOrStdout(), name, e)
		},
	}
	return cmd
}

func readRecordFile(env *cliEnv, name string) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = env.stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("reading signed record: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxRecordFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading signed record %s: %w", name, err)
	}
	if len(data) > maxRecordFile {
		return nil, fmt.Errorf("%s: too large for a signed record (over %d bytes)", name, maxRecordFile)
	}
	return data, nil
}

// verifyError describes a record that failed verification.
func verifyError(name string, err error) error {
	if errors.Is(err, identity.ErrBadSignature) || errors.Is(err, identity.ErrWrongSigner) {
		return fmt.Errorf("%s: signature does not verify: %w", name, err)
	}
	return fmt.Errorf("%s: invalid signed record: %w", name, err)
}

// describeEnvelope verifies e and prints what it is and who signed it.
func describeEnvelope(w io.Writer, name string, e *identity.Envelope) error {
	switch e.Purpose {
	case identity.PurposeHostRecord:
		r, err := identity.OpenHostRecord(e)
		if err != nil {
			return verifyError(name, err)
		}
		fmt.Fprintf(w, "%s: valid host record, signed by the host itself\n", name)
		fmt.Fprintf(w, "  name:          %s\n", r.Name)
		fmt.Fprintf(w, "  id:            %s\n", r.ID())
		fmt.Fprintf(w, "  fingerprint:   %s\n", r.PublicKey.Fingerprint())
		fmt.Fprintf(w, "  role:          %s\n", r.Role)
		printAddrs(w, "  public addrs:  ", r.PublicAddrs)
		printAddrs(w, "  private addrs: ", r.PrivateAddrs)
		fmt.Fprintf(w, "  signed at:     %s\n", r.IssuedAt().Format(time.RFC3339))
	case identity.PurposeRotation:
		r, err := identity.OpenRotation(e)
		if err != nil {
			return verifyError(name, err)
		}
		fmt.Fprintf(w, "%s: valid key rotation of %s from %s (%s) to %s (%s), signed by both\n",
			name, r.Name, r.Old.ID(), r.Old.Fingerprint(), r.New.ID(), r.New.Fingerprint())
		fmt.Fprintf(w, "  signed at: %s\n", time.Unix(0, r.Issued).UTC().Format(time.RFC3339))
	default:
		signers, err := e.Verify()
		if err != nil {
			return verifyError(name, err)
		}
		ids := make([]string, len(signers))
		for i, s := range signers {
			ids[i] = fmt.Sprintf("%s (%s)", s.ID(), s.Fingerprint())
		}
		fmt.Fprintf(w, "%s: valid signed record, purpose %q, %d-byte payload\n", name, e.Purpose, len(e.Payload))
		fmt.Fprintf(w, "  signed by: %s\n", strings.Join(ids, ", "))
	}
	return nil
}
