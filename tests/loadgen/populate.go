package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/store/storetest"
)

// populate creates a store of n generated tokens (storetest.Populate), the
// settings that put every generated organization in the generated
// enterprise, and a tokens file for -tokens: up to samples tokens of each
// kind, one a line, with the organization and a private repository it may
// reach.
func populate(path string, n, samples int, tokensOut, settingsOut string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists; populate makes a new store", path)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	w, err := storetest.PopulateSamples(ctx, db, n, time.Now(), samples)
	if err != nil {
		return err
	}
	fmt.Printf("populated %s: %d tokens, %d users, %d organizations in %s\n", path, w.Tokens, w.Users, w.Orgs, time.Since(start).Round(time.Millisecond))

	var lines []string
	for i := range max(len(w.Classic), len(w.FineGrained)) {
		for _, s := range [][]storetest.Sample{w.Classic, w.FineGrained} {
			if i < len(s) {
				lines = append(lines, fmt.Sprintf("%s %s %s", s[i].Raw, s[i].Org, s[i].Repo))
			}
		}
	}
	if err := os.WriteFile(tokensOut, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	orgs := map[string]any{}
	for i := range w.Orgs {
		orgs[storetest.OrgName(i)] = map[string]any{"enterprise": storetest.Enterprise}
	}
	settings, _ := json.MarshalIndent(map[string]any{
		"enterprises":   map[string]any{storetest.Enterprise: map[string]any{"owners": []string{"owner"}}},
		"organizations": orgs,
	}, "", "  ")
	if err := os.WriteFile(settingsOut, settings, 0o600); err != nil {
		return err
	}
	fmt.Printf("wrote %d sample tokens to %s and the settings to %s\n", len(lines), tokensOut, settingsOut)
	return nil
}
