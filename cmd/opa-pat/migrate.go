package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// newStoreMigrateCmd is `opa-pat store migrate`: it moves a deployment from
// one store to another (SQLite to PostgreSQL and back), all or nothing.
func newStoreMigrateCmd() *cobra.Command {
	var from, to, output string
	var replace bool
	cmd := &cobra.Command{
		Use:   "migrate --from PATH_OR_DSN --to PATH_OR_DSN",
		Short: "Copy every record of one store into another (SQLite file or postgres:// URL), all or nothing",
		Long: `Copies users, memberships, repositories, tokens (by hash, with their ids), approval
requests with their history, audit events and meta from --from into --to, in one
transaction on the target, and checks the row counts of every table before it commits.

The source is read from one snapshot and may stay in use. The target must hold no
records unless --replace is given, which removes them in the same transaction.
A SQLite target is created when absent, and removed again when the migration fails;
a PostgreSQL target database must exist, and the tables the migration created in it
are removed again when it fails.

Every record is checked as a write would check it: a value this opa-pat refuses
(a token in a name or a reason, a login outside GitHub's names, a NUL in a text),
which a store written by an older version may hold, stops the migration with an
error that names the record and the field, and nothing is written. So does a
source that breaks a rule import checks across records: a request of a classic
token or for another organization than its token's, or a login spelt in two cases.

  opa-pat store migrate --from /var/lib/opa-pat/pat.db --to postgres://opa-pat@db/pat
  opa-pat store migrate --from postgres://opa-pat@db/pat --to /var/lib/opa-pat/pat.db`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) (err error) {
			switch {
			case from == "":
				return errors.New("--from: give the source store (a SQLite path or a postgres:// URL)")
			case to == "":
				return errors.New("--to: give the target store (a SQLite path or a postgres:// URL)")
			case from == to:
				return errors.New("--from and --to name the same store")
			case output != outputText && output != outputJSON:
				return fmt.Errorf("--output: unknown format %s, want text or json", token.Quote(output))
			}
			ctx := cmd.Context()
			// Opening a SQLite path creates the store: a mistyped source
			// must not be made into an empty one.
			if !store.IsPostgres(from) {
				if _, err := os.Stat(from); err != nil {
					return fmt.Errorf("--from: %w", noStoreAt(from, err))
				}
			}
			// The source is only read: it may be a file, or a database,
			// that this process may not write.
			src, err := store.OpenReadOnly(ctx, from)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			defer src.Close()
			// A SQLite target this migration creates is removed again when
			// it fails: the empty (or schema-only) store it would leave at
			// --to looks like a migrated one to a sidecar pointed at it. A
			// file that existed before is never removed.
			created := newSQLiteFiles(to)
			dst, err := store.Open(ctx, to)
			defer func() {
				if err == nil || len(created) == 0 {
					return
				}
				if dst != nil {
					dst.Close()
				}
				for _, f := range created {
					if rmErr := os.Remove(f); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
						err = fmt.Errorf("%w (and removing %s, which the migration created: %w)", err, f, rmErr)
					}
				}
			}()
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			defer dst.Close()
			// So are the tables that opening a PostgreSQL target created
			// (in one transaction), before it closes: a later pg_restore
			// without --clean fails on them. Tables that were there before
			// stay.
			defer func() {
				if err == nil || !dst.CreatedSchema() {
					return
				}
				if rmErr := dst.RemoveCreatedSchema(context.WithoutCancel(ctx)); rmErr != nil {
					err = fmt.Errorf("%w (and removing the tables the migration created in %s: %w)", err, dst.Location(), rmErr)
				}
			}()
			start := time.Now()
			res, err := store.MigrateStore(ctx, src, dst, store.MigrateOptions{Replace: replace})
			if err != nil {
				return fmt.Errorf("migrating %s to %s: %w", src.Location(), dst.Location(), err)
			}
			if output == outputJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"from": src.Location(), "to": dst.Location(), "rows": res.Rows})
			}
			var parts []string
			var total int64
			for _, t := range []string{"users", "memberships", "repositories", "tokens", "requests", "audit_events", "meta"} {
				parts = append(parts, fmt.Sprintf("%d %s", res.Rows[t], t))
				total += res.Rows[t]
			}
			fmt.Fprintf(cmd.OutOrStdout(), "migrated %d rows from %s to %s in %s: %s\n", total, src.Location(), dst.Location(),
				time.Since(start).Round(time.Millisecond), strings.Join(parts, ", "))
			return nil
		}),
	}
	cmd.Flags().StringVar(&from, "from", "", "the source store: a SQLite path or a postgres:// URL")
	cmd.Flags().StringVar(&to, "to", "", "the target store: a SQLite path or a postgres:// URL")
	cmd.Flags().BoolVar(&replace, "replace", false, "remove the target's records first (in the same transaction) instead of refusing a non-empty target")
	cmd.Flags().StringVarP(&output, "output", "o", outputText, "output format: text or json")
	return cmd
}

// newSQLiteFiles lists the files a SQLite store at location would create
// that do not exist yet: the store and its -wal and -shm companions, or
// nothing when location is a PostgreSQL URL or the store's file exists
// (its companions then hold its data).
func newSQLiteFiles(location string) []string {
	if store.IsPostgres(location) {
		return nil
	}
	var files []string
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if _, err := os.Lstat(location + suffix); errors.Is(err, fs.ErrNotExist) {
			files = append(files, location+suffix)
		} else if suffix == "" {
			return nil
		}
	}
	return files
}
