package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/opa-pat/opa-pat/bundle"
	"github.com/opa-pat/opa-pat/plugin/token"
)

func init() {
	subcommands = append(subcommands, newKeysCmd)
}

func newKeysCmd() *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "Manage the cosign key pair that signs policy bundles",
	}
	keys.AddCommand(newKeysGenerateCmd())
	return keys
}

func newKeysGenerateCmd() *cobra.Command {
	var prefix, output string
	var force bool
	cmd := &cobra.Command{
		Use:   "generate --output-prefix PREFIX",
		Short: "Generate an ECDSA P-256 cosign key pair: PREFIX.key (encrypted with $COSIGN_PASSWORD) and PREFIX.pub",
		Long: `Generate an ECDSA P-256 key pair with the cosign library.

PREFIX.key is the private key in cosign's encrypted format, encrypted with the
password in COSIGN_PASSWORD (which must be set; an empty value means an empty
password). PREFIX.pub is the public key (PEM): give it to sidecars (OPA's keys:
or --verification-key) and to cosign verify-blob --key. Existing files are not
overwritten unless --force is given.`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			if prefix == "" {
				return errors.New("--output-prefix: give the key files' path prefix")
			}
			if err := checkSigningOutput(output); err != nil {
				return err
			}
			password, err := bundle.Password()
			if err != nil {
				return fmt.Errorf("key password: %w", err)
			}
			keyPath, pubPath := prefix+".key", prefix+".pub"
			if !force {
				for _, p := range []string{keyPath, pubPath} {
					if _, err := os.Stat(p); err == nil {
						return fmt.Errorf("%s exists: refusing to overwrite it (use --force)", p)
					}
				}
			}
			priv, pub, err := bundle.GenerateKeys(password)
			if err != nil {
				return err
			}
			if err := os.WriteFile(keyPath, priv, 0o600); err != nil {
				return fmt.Errorf("writing the private key: %w", err)
			}
			if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
				return fmt.Errorf("writing the public key: %w", err)
			}
			if output == "json" {
				return writeSigningJSON(cmd.OutOrStdout(), map[string]string{"private_key": keyPath, "public_key": pubPath, "algorithm": bundle.SigningAlg})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Private key written to %s\nPublic key written to %s\n", keyPath, pubPath)
			return nil
		}),
	}
	cmd.Flags().StringVar(&prefix, "output-prefix", "", "path prefix of the key files: PREFIX.key and PREFIX.pub")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing key files")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func checkSigningOutput(format string) error {
	if format != "text" && format != "json" {
		return fmt.Errorf("unknown output format %s, want text or json", token.Quote(format))
	}
	return nil
}

func writeSigningJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
