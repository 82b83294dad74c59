package main

import (
	"errors"
	"fmt"
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
A SQLite target is created when absent; a PostgreSQL target database must exist.

Every record is checked as a write would check it: a value this opa-pat refuses
(a token in a name or a reason, a login outside GitHub's names, a NUL in a text),
which a store written by an older version may hold, stops the migration with an
error that names the record and the field, and nothing is written.

  opa-pat store migrate --from /var/lib/opa-pat/pat.db --to postgres://opa-pat@db/pat
  opa-pat store migrate --from postgres://opa-pat@db/pat --to /var/lib/opa-pat/pat.db`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
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
					return fmt.Errorf("--from: no store at %s: %w", from, errors.Unwrap(err))
				}
			}
			// The source is only read: it may be a file, or a database,
			// that this process may not write.
			src, err := store.OpenReadOnly(ctx, from)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			defer src.Close()
			dst, err := store.Open(ctx, to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			defer dst.Close()
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
