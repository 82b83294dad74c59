package main

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/cmd"
	opabundle "github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/keys"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/opa-pat/opa-pat/bundle"
	"github.com/opa-pat/opa-pat/bundle/enforce"
	"github.com/opa-pat/opa-pat/bundle/rollback"
	"github.com/opa-pat/opa-pat/plugin"
)

func init() {
	subcommands = append(subcommands, newBundleCmd)
	requireSignedBundles(cmd.RootCommand)
}

func newBundleCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "bundle",
		Short: "Build, sign and verify opa-pat policy bundles",
	}
	c.AddCommand(newBundleBuildCmd(), newBundleVerifyCmd())
	return c
}

func newBundleBuildCmd() *cobra.Command {
	var settings, key, output, manifest, keyID, revision, format string
	var serial int64
	c := &cobra.Command{
		Use:   "build --settings FILE.json --key PREFIX.key --output bundle.tar.gz [REGO_DIR]",
		Short: "Build a policy bundle from REGO_DIR (default ./rego) and a settings file, signed by OPA and by cosign",
		Long: `Build a policy bundle and sign it twice with one cosign key.

The settings file is validated against the published schema
(docs/settings.schema.json) and written as data.pat.settings. REGO_DIR's .rego
files go in, tests (*_test.rego) and every other file stay out. The manifest
comes from .opa-manifest in REGO_DIR's parent (else the working directory, or
--manifest), with a revision (the git commit, or sha256:DIGEST of the content
when there is no clean commit), metadata.settings_sha256 and metadata.serial
(--serial, else the commit's committer time in Unix seconds when the tree is
clean, else none): sidecars refuse a bundle whose serial is older than the one
they trust. The policy must compile with opa-pat's built-ins.

The bundle carries OPA's .signatures.json (ES256, key id --key-id); the tarball
is signed with cosign and the sigstore bundle written to OUTPUT.sigstore.json.
The private key's password is read from COSIGN_PASSWORD.`,
		Args: cobra.MaximumNArgs(1),
		RunE: runE(func(c *cobra.Command, args []string) error {
			switch {
			case settings == "":
				return errors.New("--settings: give the settings file")
			case key == "":
				return errors.New("--key: give the cosign private key (PREFIX.key)")
			case output == "":
				return errors.New("--output: give the bundle's path")
			case c.Flags().Changed("serial") && (serial < 1 || serial > rollback.MaxSerial):
				return fmt.Errorf("--serial %d: give an integer from 1 to %d", serial, int64(rollback.MaxSerial))
			}
			if err := checkSigningOutput(format); err != nil {
				return err
			}
			regoDir := "rego"
			if len(args) == 1 {
				regoDir = args[0]
			}
			settingsJSON, err := os.ReadFile(settings)
			if err != nil {
				return fmt.Errorf("reading the settings: %w", err)
			}
			keyPEM, err := os.ReadFile(key)
			if err != nil {
				return fmt.Errorf("reading the private key: %w", err)
			}
			password, err := bundle.Password()
			if err != nil {
				return fmt.Errorf("key password: %w", err)
			}
			sk, err := bundle.LoadSigningKey(keyPEM, password)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			built, err := bundle.Build(bundle.BuildOptions{
				Settings: settingsJSON,
				RegoDir:  regoDir,
				Manifest: manifest,
				Key:      sk,
				KeyID:    keyID,
				Revision: revision,
				Serial:   serial,
			})
			if err != nil {
				return err
			}
			sigstorePath := output + bundle.SigstoreSuffix
			if err := os.WriteFile(output, built.Tarball, 0o644); err != nil {
				return fmt.Errorf("writing the bundle: %w", err)
			}
			if err := os.WriteFile(sigstorePath, built.Sigstore, 0o644); err != nil {
				return fmt.Errorf("writing the sigstore bundle: %w", err)
			}
			if format == "json" {
				return writeSigningJSON(c.OutOrStdout(), map[string]any{
					"bundle": output, "sigstore_bundle": sigstorePath, "revision": built.Manifest.Revision,
					"roots": built.Manifest.Roots, "modules": built.Modules, "metadata": built.Manifest.Metadata,
				})
			}
			fmt.Fprintf(c.OutOrStdout(), "Built %s (revision %s, %s, %d modules, settings sha256 %s)\nSigned: .signatures.json (%s) and %s (cosign)\n",
				output, built.Manifest.Revision, describeSerial(built.Manifest.Metadata[bundle.MetaSerial]), len(built.Modules),
				built.Manifest.Metadata[bundle.MetaSettingsDigest], bundle.SigningAlg, sigstorePath)
			if _, ok := built.Manifest.Metadata[bundle.MetaSerial]; !ok {
				fmt.Fprintln(c.ErrOrStderr(), "warning: the bundle has no serial (the policy directory has changes not committed, or is not in git): "+
					"a sidecar with plugins.pat.bundle.min_serial, or one that has activated a bundle with a serial, refuses it; pass --serial N (docs/bundles.md, \"Rollback protection\")")
			}
			return nil
		}),
	}
	c.Flags().StringVar(&settings, "settings", "", "the settings file (JSON)")
	c.Flags().StringVar(&key, "key", "", "the cosign private key (PREFIX.key)")
	c.Flags().StringVar(&output, "output", "bundle.tar.gz", "the bundle's path; the sigstore bundle goes to OUTPUT.sigstore.json")
	c.Flags().StringVar(&manifest, "manifest", "", "the manifest source (default: .opa-manifest in REGO_DIR's parent, else in the working directory)")
	c.Flags().StringVar(&keyID, "key-id", bundle.DefaultKeyID, "the key id (kid) in OPA's signature: the name of the key under keys: in the sidecars' config")
	c.Flags().StringVar(&revision, "revision", "", "the manifest's revision (default: the git commit, or sha256:DIGEST of the content)")
	c.Flags().Int64Var(&serial, "serial", 0, "the manifest's metadata.serial, which sidecars never let go back (default: the commit's committer time in Unix seconds when the tree is clean, else none)")
	c.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return c
}

func newBundleVerifyCmd() *cobra.Command {
	var key, sigstorePath, output string
	c := &cobra.Command{
		Use:   "verify --key PREFIX.pub bundle.tar.gz",
		Short: "Verify a bundle's OPA signature, its cosign signature and its manifest",
		Long: `Verify a bundle with the public key: the cosign signature over the tarball's
bytes (BUNDLE.sigstore.json, or --sigstore-bundle), OPA's .signatures.json
(every file's digest, ES256), and the manifest (revision, roots, the settings'
digest and schema). Every check runs; the error names each one that failed.`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(c *cobra.Command, args []string) error {
			if key == "" {
				return errors.New("--key: give the public key (PREFIX.pub)")
			}
			if err := checkSigningOutput(output); err != nil {
				return err
			}
			path := args[0]
			if sigstorePath == "" {
				sigstorePath = path + bundle.SigstoreSuffix
			}
			pubPEM, err := os.ReadFile(key)
			if err != nil {
				return fmt.Errorf("reading the public key: %w", err)
			}
			pub, err := bundle.LoadPublicKey(pubPEM)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			tarball, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("reading the bundle: %w", err)
			}
			sigstore, err := os.ReadFile(sigstorePath)
			if errors.Is(err, os.ErrNotExist) {
				sigstore = nil
			} else if err != nil {
				return fmt.Errorf("reading the sigstore bundle: %w", err)
			}
			v, err := bundle.Verify(tarball, sigstore, pub)
			if err != nil {
				msg := err.Error()
				if sigstore == nil {
					msg = strings.Replace(msg, "the sigstore bundle is missing", fmt.Sprintf("the sigstore bundle %s is missing", sigstorePath), 1)
				}
				return fmt.Errorf("%s refused: %s", path, msg)
			}
			if output == "json" {
				out := map[string]any{
					"bundle": path, "verified": true, "revision": v.Manifest.Revision, "roots": v.Manifest.Roots,
					"modules": v.Modules, "settings_sha256": v.SettingsDigest, "metadata": v.Manifest.Metadata,
				}
				if v.Serial > 0 {
					out["serial"] = v.Serial
				}
				return writeSigningJSON(c.OutOrStdout(), out)
			}
			fmt.Fprintf(c.OutOrStdout(), "Verified %s: OPA signature (%s), cosign signature (%s), manifest (revision %s, %s)\n",
				path, bundle.SigningAlg, sigstorePath, v.Manifest.Revision, describeSerial(v.Manifest.Metadata[bundle.MetaSerial]))
			return nil
		}),
	}
	c.Flags().StringVar(&key, "key", "", "the public key (PREFIX.pub)")
	c.Flags().StringVar(&sigstorePath, "sigstore-bundle", "", "the cosign signature (default: BUNDLE.sigstore.json)")
	c.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return c
}

// describeSerial is "serial N", or "no serial" for a manifest without one.
func describeSerial(v any) string {
	if v == nil {
		return "no serial"
	}
	return fmt.Sprintf("serial %v", v)
}

// requireSignedBundles closes, in OPA's run command, the gaps stock OPA
// leaves open when keys are configured:
//   - a bundle source without a signing block loads unsigned bundles: every
//     such source gets an empty signing block (a --set override) before the
//     runtime reads its configuration, so its bundles must carry a signature
//     by one of the keys, chosen by the signature's key id;
//   - local bundle paths are verified only with --verification-key: without
//     it, opa-pat passes OPA the configured key that signed them
//     (useConfiguredKey), and refuses paths it cannot verify.
//
// and those it leaves open for a sidecar (a configuration with plugins.pat)
// when no key is configured:
//   - a bundle source (bundles:, discovery) loads whatever it downloads: the
//     sidecar does not start (enforce.RequireKeys; the plugin's Validate
//     refuses it too);
//   - a local bundle loads unverified when it is unsigned, and a signed one
//     is refused with OPA's "verification key not provided": the sidecar
//     does not start, and says what to do (refuseUnverifiedBundles).
//     --skip-verify is the explicit way to load one unverified.
//
// A sidecar also refuses, without --bundle and --skip-verify, a directory
// that holds a bundle: OPA would load it as plain files, unverified
// (refuseBundleDirectories).
//
// And for a local bundle with a sigstore bundle beside it, the cosign
// signature over the tarball is checked with the verification key. A
// sidecar's local bundles are limited in size before anything reads them
// (limitLocalBundles), and its bundles: sources a file at a time
// (size_limit_bytes).
func requireSignedBundles(root *cobra.Command) {
	run := subcommand(root, "run")
	if run == nil {
		return
	}
	pre := run.PreRunE
	run.PreRunE = func(c *cobra.Command, args []string) error {
		if pre != nil {
			if err := pre(c, args); err != nil {
				return err
			}
		}
		if err := enforceSigning(c, args); err != nil {
			c.SilenceErrors, c.SilenceUsage = true, true
			fmt.Fprintln(c.ErrOrStderr(), "error: "+err.Error())
			return err
		}
		return nil
	}
}

func enforceSigning(c *cobra.Command, args []string) error {
	flags := c.Flags()
	file, _ := flags.GetString("config-file")
	sets, _ := flags.GetStringArray("set")
	setFiles, _ := flags.GetStringArray("set-file")
	config, err := enforce.LoadRunConfig(file, sets, setFiles)
	if err != nil {
		return err
	}
	sidecar := configuresPat(config)
	if sidecar && config["discovery"] == nil {
		// Before OPA reads a bundle: every activation of the sidecar
		// then refuses a bundle older than the one it trusts. Not with
		// discovery, whose bundle OPA would then read lazily, without
		// its data (bundle/rollback).
		rollback.Install()
	}
	if sidecar {
		if err := enforce.RequireKeys(config); err != nil {
			return err
		}
		if err := enforce.RequireES256(config); err != nil {
			return err
		}
		if err := enforce.RequireSignedDeltas(config); err != nil {
			return err
		}
		if err := requireES256Flags(flags); err != nil {
			return err
		}
		// A tampered bundle of a megabyte, compressed zeros, would
		// otherwise cost gigabytes on every poll (docs/bundles.md).
		for _, src := range enforce.UnlimitedSources(config) {
			if err := flags.Set("set", fmt.Sprintf("%s.size_limit_bytes=%d", src, bundle.MaxFileBytes)); err != nil {
				return fmt.Errorf("limiting %s: %w", src, err)
			}
		}
		// Before anything below or OPA reads a local bundle's files.
		bundleMode, _ := flags.GetBool("bundle")
		if err := limitLocalBundles(bundleMode, args); err != nil {
			return err
		}
		if skipVerify, _ := flags.GetBool("skip-verify"); !bundleMode && !skipVerify {
			if err := refuseBundleDirectories(args); err != nil {
				return err
			}
		}
	}
	// Keys with only a private_key (a service's credentials) verify no
	// bundle: they count as none.
	keyed := len(enforce.VerificationKeys(config)) > 0
	if len(args) > 0 && !keyed && sidecar {
		verificationKey, _ := flags.GetString("verification-key")
		skipVerify, _ := flags.GetBool("skip-verify")
		bundleMode, _ := flags.GetBool("bundle")
		if verificationKey == "" && !skipVerify {
			if err := refuseUnverifiedBundles(bundleMode, args); err != nil {
				return err
			}
		}
	}
	if keyed {
		verificationKey, _ := flags.GetString("verification-key")
		skipVerify, _ := flags.GetBool("skip-verify")
		if len(args) > 0 && verificationKey == "" && !skipVerify {
			if err := useConfiguredKey(flags, config, args); err != nil {
				return err
			}
		}
		for _, src := range enforce.UnsignedSources(config) {
			if src == "bundle" {
				return errors.New("keys are configured with the deprecated bundle: section, which opa-pat cannot make require a signature: use bundles: with a signing block")
			}
			if err := flags.Set("set", src+".signing.scope="); err != nil {
				return fmt.Errorf("requiring a signature for %s: %w", src, err)
			}
		}
	}
	verificationKey := flags.Lookup("verification-key").Value.String()
	if err := checkVerificationKeyFile(flags, verificationKey); err != nil {
		return err
	}
	if watch, _ := flags.GetBool("watch"); watch && verificationKey != "" && len(args) > 0 {
		// OPA's watcher reloads changed paths without verifying them: a
		// tampered or unsigned file put in place of the bundle would become
		// the policy.
		return errors.New("--watch reloads local paths without verifying their signatures, so it is refused while local bundles are verified: " +
			"serve the bundle from a bundle service (bundles: with a signing block) to update a verified policy, or restart the sidecar after replacing the file")
	}
	if verificationKey != "" && !flags.Changed("signing-alg") {
		// OPA's default is RS256; a cosign key signs ES256.
		if _, err := loadPublicKeyArg(verificationKey); err == nil {
			if err := flags.Set("signing-alg", bundle.SigningAlg); err != nil {
				return fmt.Errorf("--signing-alg: %w", err)
			}
		}
	}
	return verifyLocalSigstore(verificationKey, args)
}

// requireES256Flags refuses, on a sidecar, a --verification-key that is not
// an ECDSA P-256 public key and a --signing-alg other than ES256: with
// HS256, OPA would take the public key's PEM for an HMAC secret, and anyone
// who has it could sign a bundle.
func requireES256Flags(flags *pflag.FlagSet) error {
	if alg, _ := flags.GetString("signing-alg"); flags.Changed("signing-alg") && alg != bundle.SigningAlg {
		return fmt.Errorf("--signing-alg %s: a sidecar verifies bundles signed %s only (ECDSA P-256, the cosign key); leave the flag out", alg, bundle.SigningAlg)
	}
	if key, _ := flags.GetString("verification-key"); key != "" {
		if _, err := loadPublicKeyArg(key); err != nil {
			return fmt.Errorf("--verification-key: %w", err)
		}
	}
	return nil
}

// loadPublicKeyArg reads --verification-key (a file, or the PEM itself) as
// an ECDSA P-256 public key. An argument that is no PEM and no file it can
// read gives the file's error: "failed to parse PEM block" would hide
// that the file is missing.
func loadPublicKeyArg(arg string) (*ecdsa.PublicKey, error) {
	keyPEM, err := os.ReadFile(arg)
	if err != nil {
		if !looksLikePEM(arg) {
			return nil, err
		}
		keyPEM = []byte(arg)
	}
	return bundle.LoadPublicKey(keyPEM)
}

func looksLikePEM(s string) bool { return strings.Contains(s, "-----BEGIN ") }

// checkVerificationKeyFile refuses a --verification-key that is neither a
// PEM key nor a file this process can read. OPA takes such an argument for
// the key itself and fails with "failed to parse PEM block containing the
// key", which does not say that the file is missing. An HMAC secret (an
// HS* --signing-alg) is no file and is left to OPA.
func checkVerificationKeyFile(flags *pflag.FlagSet, key string) error {
	if key == "" || looksLikePEM(key) {
		return nil
	}
	if alg, _ := flags.GetString("signing-alg"); strings.HasPrefix(strings.ToUpper(alg), "HS") {
		return nil
	}
	if _, err := os.ReadFile(key); err != nil {
		return fmt.Errorf("--verification-key: neither a PEM public key nor a file that can be read: %w", err)
	}
	return nil
}

// useConfiguredKey verifies local bundle files with a key from keys:, which
// OPA uses only for bundles it downloads: it gives OPA the key as if by
// --verification-key (with --bundle). The key is the only verification key
// configured, or the one the bundles' signatures name by key id (as a
// signing block without keyid does); entries with only a private_key (a
// service's credentials) are not candidates. Directories and files of other
// kinds are refused: they would load unverified.
func useConfiguredKey(flags *pflag.FlagSet, config map[string]any, args []string) error {
	raw, err := json.Marshal(config["keys"])
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	configured, err := keys.ParseKeysConfig(raw)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	names := enforce.VerificationKeys(config)
	maps.DeleteFunc(configured, func(name string, _ *keys.Config) bool { return !slices.Contains(names, name) })
	chosen := ""
	for _, arg := range args {
		p := localPath(arg)
		tarball, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("keys are configured, so local paths must be signed bundle files: %s: %w (or pass --skip-verify to load it unverified)", arg, err)
		}
		if !isGzip(tarball) {
			// A policy file, a manifest, a tarball not compressed: not a
			// bundle file, so not verifiable, like a directory.
			return fmt.Errorf("keys are configured, so local paths must be signed bundle files: %s is not a bundle file (a gzipped tarball, as opa-pat bundle build writes) (or pass --skip-verify to load it unverified)", arg)
		}
		kid, err := bundle.SignatureKeyID(tarball)
		if err != nil {
			return fmt.Errorf("bundle %s refused: %w", p, err)
		}
		name := kid
		switch {
		case len(names) == 1:
			name = names[0]
		case kid == "":
			name = names[0] // no signature: OPA refuses it with its own message
		case configured[kid] == nil:
			return fmt.Errorf("bundle %s refused: it is signed with key id %q, which keys: does not name (keys: %s)", p, kid, strings.Join(names, ", "))
		}
		if chosen != "" && name != chosen {
			return fmt.Errorf("bundle %s refused: it is signed with key id %q, another local bundle with %q; OPA verifies local bundles with one key", p, name, chosen)
		}
		chosen = name
	}
	kc := configured[chosen]
	for flag, value := range map[string]string{"verification-key": kc.Key, "verification-key-id": chosen, "signing-alg": kc.Algorithm, "bundle": "true"} {
		if err := flags.Set(flag, value); err != nil {
			return fmt.Errorf("verifying local bundles with key %s: --%s: %w", chosen, flag, err)
		}
	}
	if kc.Scope != "" {
		if err := flags.Set("scope", kc.Scope); err != nil {
			return fmt.Errorf("verifying local bundles with key %s: --scope: %w", chosen, err)
		}
	}
	return nil
}

// configuresPat reports whether a run configuration configures the pat
// plugin: the process is a sidecar, which takes only policy it can verify.
func configuresPat(config map[string]any) bool {
	plugins, _ := config["plugins"].(map[string]any)
	_, ok := plugins[plugin.Name]
	return ok
}

// refuseUnverifiedBundles refuses, for a sidecar with no key to verify
// them, the local paths OPA loads as bundles: every path with --bundle,
// else the .tar.gz files (OPA loads those as bundles in any case). An
// unsigned bundle would load unverified; a signed one OPA refuses with
// "verification key not provided", which does not say what to do. Other
// paths (policy directories and files, data files) load as OPA loads them:
// that is development, and the documentation says so. A path that cannot be
// read is left to OPA, which names it.
func refuseUnverifiedBundles(bundleMode bool, args []string) error {
	for _, arg := range args {
		if !bundleMode && !strings.HasSuffix(arg, ".tar.gz") {
			continue
		}
		p := localPath(arg)
		signed, ok := localBundleSigned(p)
		if !ok {
			continue
		}
		if signed {
			return fmt.Errorf("bundle %s is signed, but no key is given to verify it: add --verification-key cosign.pub (or the key under keys: in the configuration)", p)
		}
		return fmt.Errorf("bundle %s is not signed: sign it with opa-pat bundle build --key, or pass --skip-verify to load it unverified (development only)", p)
	}
	return nil
}

// limitLocalBundles refuses, for a sidecar, a local bundle that OPA would
// read into memory beyond bundle.MaxFileBytes a file or
// bundle.MaxBundleBytes in all: OPA reads every file of a local bundle,
// up to 1 GiB each, before it checks a signature, so a tarball of a
// megabyte, compressed zeros, took about a gigabyte. The bundles are the
// paths OPA loads as bundles: every path with --bundle (a tarball, or a
// directory whose files' sizes are summed), else the .tar.gz files, given
// as paths or found under a directory (OPA's loader loads those as
// bundles too). The check streams tar headers and keeps no file content.
// A path that cannot be read is left to OPA, which names it.
func limitLocalBundles(bundleMode bool, args []string) error {
	for _, arg := range args {
		p := localPath(arg)
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		asBundle := bundleMode || strings.HasSuffix(arg, ".tar.gz")
		switch {
		case asBundle && fi.IsDir():
			err = bundle.CheckDirSize(p)
		case asBundle:
			err = checkTarballFileSize(p)
		case fi.IsDir():
			// OPA loads the .tar.gz files under a directory as
			// bundles (with --skip-verify; refuseBundleDirectories
			// refuses them otherwise).
			err = walkLoaded(p, func(f string, fi os.FileInfo) error {
				if fi.IsDir() || !strings.HasSuffix(f, ".tar.gz") {
					return nil
				}
				if err := checkTarballFileSize(f); errors.Is(err, bundle.ErrTooLarge) {
					return fmt.Errorf("bundle %s refused: %w", f, err)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if errors.Is(err, bundle.ErrTooLarge) {
			return fmt.Errorf("bundle %s refused: %w", p, err)
		}
	}
	return nil
}

// refuseBundleDirectories refuses, for a sidecar run without --bundle and
// --skip-verify, a path that is a directory holding a bundle anywhere under
// it, as OPA's loader walks it (following symbolic links): a directory with
// .manifest or .signatures.json at its top (a bundle unpacked), whose files
// OPA loads as plain policy and data, verifying nothing, so a signed bundle
// unpacked into a directory loaded even after a file was changed; and a
// .tar.gz file, which OPA loads as a bundle without verifying its signature
// (its loader reads bundle files in directories unverified, whatever the
// keys), so a changed signed tarball in the directory became the policy
// although the same tarball given as a path is refused. With --bundle a
// path is verified. Policy directories (rego/) hold neither and load as
// before.
func refuseBundleDirectories(args []string) error {
	for _, arg := range args {
		p := localPath(arg)
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			continue
		}
		err := walkLoaded(p, func(f string, fi os.FileInfo) error {
			if !fi.IsDir() {
				if strings.HasSuffix(f, ".tar.gz") {
					return fmt.Errorf("%s holds a bundle file, %s, which OPA would load without verifying its signature: pass the bundle file with --bundle so that it is verified, or --skip-verify to load it unverified (development only)", p, f)
				}
				return nil
			}
			var held []string
			for _, name := range []string{".manifest", ".signatures.json"} {
				if _, err := os.Lstat(filepath.Join(f, name)); err == nil {
					held = append(held, name)
				}
			}
			if len(held) > 0 {
				return fmt.Errorf("%s holds a bundle (%s): pass it with --bundle so that it is verified, or --skip-verify to load it unverified (development only)",
					f, strings.Join(held, ", "))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// walkLoaded calls fn for root and every directory and file under it, in
// the order OPA's loader reads them (os.ReadDir's, by name), following
// symbolic links as OPA does (it stats every path); a directory reached
// twice (a link cycle) is walked once. Entries it cannot read are skipped:
// OPA names them. The first error of fn stops the walk.
func walkLoaded(root string, fn func(p string, fi os.FileInfo) error) error {
	seen := map[string]bool{}
	var walk func(p string) error
	walk = func(p string) error {
		fi, err := os.Stat(p)
		if err != nil {
			return nil
		}
		if err := fn(p, fi); err != nil || !fi.IsDir() {
			return err
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil || seen[real] {
			return nil
		}
		seen[real] = true
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil
		}
		for _, e := range entries {
			if err := walk(filepath.Join(p, e.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root)
}

// checkTarballFileSize is bundle.CheckTarballSize for the file at p.
func checkTarballFileSize(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return bundle.CheckTarballSize(f)
}

// localBundleSigned reports whether the bundle at p (a directory, or a
// gzipped tarball) carries OPA's signature; ok is false when p is neither
// or cannot be read.
func localBundleSigned(p string) (signed, ok bool) {
	fi, err := os.Stat(p)
	if err != nil {
		return false, false
	}
	if fi.IsDir() {
		raw, err := os.ReadFile(filepath.Join(p, ".signatures.json"))
		if errors.Is(err, os.ErrNotExist) {
			return false, true
		}
		var sc opabundle.SignaturesConfig
		if err != nil || json.Unmarshal(raw, &sc) != nil {
			return false, false // OPA says what is wrong with it
		}
		return len(sc.Signatures) > 0, true
	}
	tarball, err := os.ReadFile(p)
	if err != nil || !isGzip(tarball) {
		return false, false
	}
	signed, err = bundle.Signed(tarball)
	return signed, err == nil
}

// isGzip reports whether b starts with gzip's magic number.
func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// localPath strips OPA's file:// and prefix: forms from a path argument.
func localPath(arg string) string {
	p := strings.TrimPrefix(arg, "file://")
	if _, err := os.Stat(p); err != nil {
		if _, after, ok := strings.Cut(p, ":"); ok {
			return after
		}
	}
	return p
}

// verifyLocalSigstore checks, for each local bundle path that has a sigstore
// bundle beside it (PATH.sigstore.json, as bundle build writes), the cosign
// signature over the tarball's bytes with the --verification-key, when that
// is an ECDSA P-256 public key. OPA's own check covers the files inside; this
// one also refuses a tarball changed where OPA does not read (gzip framing).
// A path without a sigstore bundle is left to OPA's check alone.
func verifyLocalSigstore(verificationKey string, paths []string) error {
	if verificationKey == "" {
		return nil
	}
	pub, err := loadPublicKeyArg(verificationKey)
	if err != nil {
		return nil // not a cosign key: OPA's check alone
	}
	for _, p := range paths {
		p = localPath(p)
		sigstore, err := os.ReadFile(p + bundle.SigstoreSuffix)
		if err != nil {
			continue
		}
		tarball, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if err := bundle.VerifyBlob(pub, sigstore, tarball); err != nil {
			return fmt.Errorf("bundle %s refused: cosign signature: %w", p, err)
		}
	}
	return nil
}
