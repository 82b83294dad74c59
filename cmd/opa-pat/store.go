package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/opa-pat/opa-pat/bundle"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

func init() {
	subcommands = append(subcommands, newStoreCmd)
}

// Output formats of the store, token, requests and audit commands.
const (
	outputText = "text"
	outputJSON = "json"
)

// storeFlags are the flags every command on the store shares.
type storeFlags struct {
	path   string
	output string
	actor  string
	// writes is set by register: the command takes --actor.
	writes bool
	// cmd is the command that registered the flags: warnings about the
	// store go to its standard error.
	cmd *cobra.Command
}

// register adds --store, --output and --actor (who acts, for the audit log).
func (f *storeFlags) register(cmd *cobra.Command, defaultOutput string) {
	f.registerRead(cmd, defaultOutput)
	f.writes = true
	cmd.Flags().StringVar(&f.actor, "actor", defaultActor(), "who acts, as recorded in the audit log")
}

// registerRead adds --store and --output, for commands that only read.
func (f *storeFlags) registerRead(cmd *cobra.Command, defaultOutput string) {
	f.cmd = cmd
	cmd.Flags().StringVar(&f.path, "store", os.Getenv("OPA_PAT_STORE"), "the token store: a SQLite file path or a postgres:// URL; default $OPA_PAT_STORE")
	cmd.Flags().StringVarP(&f.output, "output", "o", defaultOutput, "output format: text or json")
}

// defaultActor is cli:$USER, or cli: and the user the process runs as when
// USER is unset (docs/cli.md).
func defaultActor() string {
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

func (f *storeFlags) check() error {
	if f.path == "" {
		return errors.New("--store: give the path of the token store (or set OPA_PAT_STORE)")
	}
	if err := store.CheckLocation(f.path); err != nil {
		return fmt.Errorf("--store: %w", err)
	}
	if f.output != outputText && f.output != outputJSON {
		return fmt.Errorf("--output: unknown format %s, want text or json", token.Quote(f.output))
	}
	// The audit log says who acted (rule 23): a blank name says nobody,
	// and a token there would be kept in plain text (the store refuses it
	// too, once the write is done).
	if err := store.CheckActor("--actor", f.actor); err != nil {
		return err
	}
	// An empty --actor is as blank as "  ": the issuer would record the
	// token's user in its place, and the store "" (nobody).
	if f.writes && strings.TrimSpace(f.actor) == "" || strings.ContainsFunc(f.actor, unicode.IsControl) {
		return fmt.Errorf("--actor: %s is not a name", token.Quote(f.actor))
	}
	return nil
}

func (f *storeFlags) open(ctx context.Context) (*store.DB, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	// A store this process may not write fails here, saying why, before
	// anything is read or created.
	if err := store.CheckWritable(f.path); err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, f.path)
	if err == nil {
		f.warnSchema(db)
	}
	return db, err
}

// warnSchema says on standard error that the store's schema is newer than
// this opa-pat's and used as this version's (store.DB.SchemaNotice), so
// that whoever runs the command knows to upgrade opa-pat.
func (f *storeFlags) warnSchema(db *store.DB) {
	if n := db.SchemaNotice(); n != "" && f.cmd != nil {
		fmt.Fprintln(f.cmd.ErrOrStderr(), "warning: store "+store.RedactLocation(f.path)+": "+n)
	}
}

// withStoreRead opens the store read-only, runs fn on it and closes it
// again, for commands that only read: they create and lock nothing, write
// nothing to a store at this opa-pat's schema (an older one is upgraded
// first, store.OpenReadOnly), and work on a file and directory this process
// may not write. A file read
// without locks (store.OpenReadOnly) is checked after fn, before its output
// is written: fn's standard output is held until then.
func (f *storeFlags) withStoreRead(cmd *cobra.Command, fn func(db *store.DB) error) error {
	if err := f.check(); err != nil {
		return err
	}
	db, err := store.OpenReadOnly(cmd.Context(), f.path)
	if err != nil {
		return err
	}
	defer db.Close()
	f.warnSchema(db)
	if !db.ReadWithoutLocks() {
		return fn(db)
	}
	out := cmd.OutOrStdout()
	var held bytes.Buffer
	cmd.SetOut(&held)
	err = fn(db)
	cmd.SetOut(out)
	if cerr := db.ReadConsistent(); cerr != nil {
		return cerr
	}
	if _, werr := out.Write(held.Bytes()); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}

// withStore opens the store, runs fn on it and closes it again. When fn
// fails on a SQLite file that opening created (an import or a token the
// store refused), and the store is still empty, the file is removed again:
// a command that fails leaves nothing behind. A store that holds anything,
// written by this command or by another process meanwhile, stays.
func (f *storeFlags) withStore(ctx context.Context, fn func(db *store.DB) error) error {
	created := false
	if f.path != "" && !store.IsPostgres(f.path) {
		_, err := os.Lstat(f.path)
		created = errors.Is(err, fs.ErrNotExist)
	}
	db, err := f.open(ctx)
	if err != nil {
		return err
	}
	err = fn(db)
	if err != nil && created {
		if empty, eerr := db.Empty(ctx); eerr == nil && empty {
			db.Close()
			for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
				os.Remove(f.path + suffix)
			}
			return err
		}
	}
	db.Close()
	return err
}

// noStoreAt is the error for a store location where there is no store: a
// URL of a database opa-pat cannot use is named as such (its password
// hidden), a path as missing.
func noStoreAt(location string, err error) error {
	if lerr := store.CheckLocation(location); lerr != nil {
		return lerr
	}
	return fmt.Errorf("no store at %s: %w", location, errors.Unwrap(err))
}

// noArgs refuses the positional arguments of a command that takes none;
// one that looks like a token is described, not shown.
func noArgs(args []string) error {
	if len(args) != 0 {
		shown := make([]string, len(args))
		for i, a := range args {
			shown[i] = a
			if token.Hidden(a) {
				shown[i] = token.Quote(a)
			}
		}
		return fmt.Errorf("unexpected arguments: %s", strings.Join(shown, " "))
	}
	return nil
}

func (f *storeFlags) json() bool { return f.output == outputJSON }

// runE adapts a command body: the error goes to stderr on one line, without
// cobra's usage text, and the exit status is non-zero.
func runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cmd.SilenceErrors = true
		cmd.SilenceUsage = true
		err := fn(cmd, args)
		if err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), errorLine(err.Error()))
			return reported{err}
		}
		return nil
	}
}

// spell replaces each name given with the store's spelling of it (logins
// are compared without regard to case, as on GitHub): --org Octo-Org is the
// store's octo-org.
func spell(ctx context.Context, db *store.DB, names ...*string) error {
	for _, n := range names {
		if *n == "" {
			continue
		}
		s, err := db.Spelling(ctx, *n)
		if err != nil {
			return err
		}
		*n = s
	}
	return nil
}

// reported is an error its command has printed already.
type reported struct{ error }

func (r reported) Unwrap() error { return r.error }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newStoreCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "store",
		Short: "Import, export, migrate and prune the token store",
	}
	root.AddCommand(newStoreImportCmd(), newStoreExportCmd(), newStoreSettingsCmd(), newStoreMigrateCmd(), newStorePruneChangesCmd())
	return root
}

func newStoreImportCmd() *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "import --store PATH FILE.json",
		Short: "Load users, memberships, repositories, tokens and grants from JSON (all or nothing)",
		Long: `Load users, memberships, repositories, tokens and grants from a JSON file ("-" reads
standard input) into the store, creating the store when it is absent. The import is one
transaction: a bad record stops it, naming the record and the field, and nothing is written.
Tokens are given raw ("token", checked and hashed) or as "token_sha256".`,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("give one file to import, got %d arguments", len(args))
			}
			if err := f.check(); err != nil {
				return err
			}
			in, closeIn, err := openInput(cmd, args[0])
			if err != nil {
				return err
			}
			defer closeIn()
			d, err := store.ParseDump(in)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			for _, w := range d.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), redactText(fmt.Sprintf("warning: %s: %s", args[0], w)))
			}
			return f.withStore(cmd.Context(), func(db *store.DB) error {
				res, err := db.Import(cmd.Context(), d, f.actor)
				if err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				if f.json() {
					return writeJSON(cmd.OutOrStdout(), map[string]int{"users": res.Users, "memberships": res.Memberships,
						"repositories": res.Repositories, "tokens": res.Tokens, "grants": res.Grants, "unchanged": res.Unchanged})
				}
				// The counts are of records written; records that said what
				// the store held were left as they were.
				unchanged := ""
				if res.Unchanged > 0 {
					unchanged = fmt.Sprintf("; %s already so, unchanged", count(res.Unchanged, "record"))
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "imported %s, %s, %s, %s and %s into %s%s\n", count(res.Users, "user"),
					count(res.Memberships, "membership"), count(res.Repositories, "repository"), count(res.Tokens, "token"), count(res.Grants, "grant"),
					store.RedactLocation(f.path), unchanged)
				return err
			})
		}),
	}
	f.register(cmd, outputText)
	return cmd
}

// count writes "1 user", "2 users", "2 repositories".
func count(n int, word string) string {
	if n != 1 {
		if w, ok := strings.CutSuffix(word, "y"); ok {
			word = w + "ie"
		}
		word += "s"
	}
	return fmt.Sprintf("%d %s", n, word)
}

func openInput(cmd *cobra.Command, name string) (io.Reader, func(), error) {
	if name == "-" {
		return cmd.InOrStdin(), func() {}, nil
	}
	file, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return file, func() { file.Close() }, nil
}

func newStoreExportCmd() *cobra.Command {
	var f storeFlags
	var file string
	cmd := &cobra.Command{
		Use:   "export --store PATH [--file OUT.json]",
		Short: "Write the store as import JSON (tokens as token_sha256, never raw)",
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			return f.withStoreRead(cmd, func(db *store.DB) error {
				d, err := db.ExportSorted(cmd.Context())
				if err != nil {
					return err
				}
				if err := db.ReadConsistent(); err != nil {
					return err // before --file is written
				}
				if file == "" || file == "-" {
					return writeJSON(cmd.OutOrStdout(), d)
				}
				if err := writePrivateFile(file, func(w io.Writer) error { return writeJSON(w, d) }); err != nil {
					return fmt.Errorf("writing %s: %w", file, err)
				}
				if f.json() {
					return nil
				}
				_, err = fmt.Fprintf(cmd.ErrOrStderr(), "exported %s, %s, %s, %s and %s to %s\n", count(len(d.Users), "user"),
					count(len(d.Memberships), "membership"), count(len(d.Repositories), "repository"), count(len(d.Tokens), "token"), count(len(d.Grants), "grant"), file)
				return err
			})
		}),
	}
	f.registerRead(cmd, outputJSON)
	cmd.Flags().StringVar(&file, "file", "", "write to this file instead of standard output")
	return cmd
}

// writePrivateFile writes a file that holds hashes and user data, mode
// 0600 also when it replaces one of another mode: it writes a new file
// beside it and renames it into place, so that a failed write leaves the
// old file as it was. A path that is not a regular file (a named pipe,
// /dev/stdout) is written as it is.
func writePrivateFile(path string, write func(w io.Writer) error) error {
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved // replace the file a link points to, not the link
	}
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		out, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		return errors.Join(write(out), out.Close())
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // once renamed, there is nothing to remove
	if err := errors.Join(write(tmp), tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func newStoreSettingsCmd() *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "settings --store PATH [FILE.json]",
		Short: "Show, or record, the settings token creation is checked against",
		Long: `Without FILE, print the settings (data.pat.settings) recorded in the store: a running
sidecar records those of its active bundle. With FILE, record FILE's settings, so that
"token create" checks against them without a sidecar (a sidecar overwrites them when its
bundle activates).`,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return fmt.Errorf("give at most one settings file, got %d arguments", len(args))
			}
			var settings map[string]any
			if len(args) == 1 {
				b, err := os.ReadFile(args[0])
				if err != nil {
					return err
				}
				if settings, err = bundle.ParseSettings(b); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
			}
			if len(args) == 0 {
				return f.withStoreRead(cmd, func(db *store.DB) error {
					b, err := db.Settings(cmd.Context())
					if err != nil {
						return err
					}
					if b == nil {
						b = []byte("{}")
					}
					var v any
					if err := json.Unmarshal(b, &v); err != nil {
						return fmt.Errorf("the store's recorded settings: %w", err)
					}
					return writeJSON(cmd.OutOrStdout(), v)
				})
			}
			return f.withStore(cmd.Context(), func(db *store.DB) error {
				compact, _ := json.Marshal(settings)
				if err := db.RecordSettings(cmd.Context(), compact, f.actor); err != nil {
					return err
				}
				if f.json() {
					return writeJSON(cmd.OutOrStdout(), settings)
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "recorded the settings of %s in %s\n", args[0], store.RedactLocation(f.path))
				return err
			})
		}),
	}
	f.register(cmd, outputJSON)
	return cmd
}

// defaultKeepChanges is prune-changes' --keep: hours of changes at any rate a
// store sees, and far more than a running sidecar lags behind.
const defaultKeepChanges = 100_000

func newStorePruneChangesCmd() *cobra.Command {
	var (
		f      storeFlags
		keep   int64
		vacuum bool
	)
	cmd := &cobra.Command{
		Use:   "prune-changes --store PATH [--keep N] [--vacuum]",
		Short: "Remove all but the newest N entries of the change log sidecars follow",
		Long: `Every change to the store (a token created or revoked, a request reviewed, an import)
appends an entry to the change log, which sidecars read to keep their index current; nothing
else removes entries. prune-changes keeps the newest --keep entries and removes the rest.

A sidecar that has not applied a removed entry does not skip it: it loads the whole store
afresh, as a restart would, and answers from the records it had until then. Running sidecars
apply every change within a second or so, and a load costs what a start costs; keep far more
entries than a few minutes of writes.

SQLite keeps the pages a prune frees for later writes. With --vacuum the store is rewritten
afterwards so that the file shrinks: this needs free disk of about the file's size and makes
other writers wait until it is done. On PostgreSQL --vacuum runs VACUUM on the change log.`,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			return f.withStore(cmd.Context(), func(db *store.DB) error {
				removed, through, err := db.PruneChanges(cmd.Context(), keep)
				if err != nil {
					return err
				}
				out := map[string]int64{"removed": removed, "pruned_through": through}
				msg := fmt.Sprintf("removed %d change-log entries; the log now starts after change %d\n", removed, through)
				if vacuum {
					before, after, err := db.Vacuum(cmd.Context())
					if err != nil {
						// The prune itself is done and recorded: say so.
						return fmt.Errorf("removed %d change-log entries (the log now starts after change %d), but %w", removed, through, err)
					}
					if store.IsPostgres(f.path) {
						msg += "vacuumed the change log\n"
					} else {
						out["bytes_before"], out["bytes_after"] = before, after
						msg += fmt.Sprintf("vacuumed the store: %d bytes before, %d after\n", before, after)
					}
				}
				if f.json() {
					return writeJSON(cmd.OutOrStdout(), out)
				}
				_, err = fmt.Fprint(cmd.OutOrStdout(), msg)
				return err
			})
		}),
	}
	f.registerRead(cmd, outputText)
	keep = defaultKeepChanges
	cmd.Flags().Var(&minInt[int64]{p: &keep, min: 1, want: "at least 1 entry"}, "keep", "how many of the newest change-log entries to keep (at least 1)")
	cmd.Flags().BoolVar(&vacuum, "vacuum", false, "afterwards, give the freed space back (SQLite: rewrite the file; PostgreSQL: VACUUM the change log)")
	return cmd
}
