package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/opa-pat/opa-pat/plugin/store"
)

func init() {
	subcommands = append(subcommands, newAuditCmd)
}

func newAuditCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "audit",
		Short: "Read the audit log: who did what, when and why",
	}
	root.AddCommand(newAuditListCmd())
	return root
}

func idOrDash(id int64) string {
	if id == 0 {
		return "-"
	}
	return strconv.FormatInt(id, 10)
}

func newAuditListCmd() *cobra.Command {
	var f storeFlags
	var filter store.AuditFilter
	cmd := &cobra.Command{
		Use:   "list --store PATH [--org O] [--actor A] [--action X] [--token ID] [--request ID] [--limit N]",
		Short: "List audit events, oldest first",
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if filter.Limit < 0 {
				return fmt.Errorf("--limit: %d is negative", filter.Limit)
			}
			if err := store.CheckStoreAuditAction(filter.Action); err != nil {
				return fmt.Errorf("--action: %w", err)
			}
			return f.withStoreRead(cmd, func(db *store.DB) error {
				if err := spell(cmd.Context(), db, &filter.Org); err != nil {
					return err
				}
				events, err := db.ListAudit(cmd.Context(), filter)
				if err != nil {
					return err
				}
				if f.json() {
					return writeJSON(cmd.OutOrStdout(), events)
				}
				rows := make([][]string, len(events))
				for i, e := range events {
					details := "-"
					if len(e.Details) > 0 {
						b, _ := json.Marshal(e.Details)
						details = string(b)
					}
					rows[i] = []string{strconv.FormatInt(e.ID, 10), e.At.Format(time.RFC3339), e.Actor, e.Action, orDash(e.Org),
						idOrDash(e.TokenID), idOrDash(e.RequestID), orDash(oneLine(e.Reason)), details}
				}
				if err := table(cmd.OutOrStdout(), []string{"ID", "AT", "ACTOR", "ACTION", "ORG", "TOKEN", "REQUEST", "REASON", "DETAILS"}, rows); err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%d %s\n", len(events), plural("event", len(events)))
				return err
			})
		}),
	}
	f.registerRead(cmd, outputText)
	fl := cmd.Flags()
	fl.StringVar(&filter.Org, "org", "", "only events of this organization")
	fl.StringVar(&filter.Actor, "actor", "", "only events by this actor")
	fl.StringVar(&filter.Action, "action", "", "only this action, e.g. request.approve")
	idFlag(fl, &filter.TokenID, "token", "token", "only events of this token id")
	idFlag(fl, &filter.RequestID, "request", "request", "only events of this request id")
	countFlag(fl, &filter.Limit, "limit", 0, "0 (all events) or more", "only the newest N events (0: all)")
	return cmd
}
