package tests

import (
	"bytes"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opa-pat/opa-pat/plugin/token"
)

// Tokens of an earlier opa-pat, which named GitHub's actions_variables
// permission "variables", keep exactly their access through the gate: one
// imported from that version's export (the import stores GitHub's name),
// one whose row that version wrote (the sidecar reads it under GitHub's
// name). A service that still asks the decision for "variables" is
// answered as for actions_variables. Likewise a token whose row holds
// GitHub's other spelling of two account permissions (emails, keys): the
// sidecar reads it under the REST API's (email_addresses, git_ssh_keys),
// and a request naming either spelling is decided on it.
func TestExtAuthzEarlierPermissionNames(t *testing.T) {
	imported, err := token.Generate(token.KindFineGrained, token.DefaultPrefixes)
	if err != nil {
		t.Fatal(err)
	}
	written, err := token.Generate(token.KindFineGrained, token.DefaultPrefixes)
	if err != nil {
		t.Fatal(err)
	}
	spelled, err := token.Generate(token.KindFineGrained, token.DefaultPrefixes)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	created, expires := now.Add(-24*time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339)
	hashOf := func(raw string) string { h := token.Hash(raw); return hex.EncodeToString(h[:]) }
	export := `{"tokens": [
		{"token": "` + imported + `", "name": "old-read", "kind": "fine_grained", "user": "bob", "resource_owner": "octo-org",
		 "repository_selection": "all", "permissions": {"metadata": "read", "variables": "read"},
		 "created_at": "` + created + `", "expires_at": "` + expires + `", "revoked": false},
		{"token": "` + written + `", "name": "old-write", "kind": "fine_grained", "user": "bob", "resource_owner": "octo-org",
		 "repository_selection": "all", "permissions": {"metadata": "read", "variables": "write"},
		 "created_at": "` + created + `", "expires_at": "` + expires + `", "revoked": false},
		{"token": "` + spelled + `", "name": "old-spelled", "kind": "fine_grained", "user": "bob", "resource_owner": "bob",
		 "repository_selection": "public", "permissions": {"metadata": "read", "emails": "read", "git_ssh_keys": "write"},
		 "created_at": "` + created + `", "expires_at": "` + expires + `", "revoked": false}],
	 "grants": [
		{"token_sha256": "` + hashOf(imported) + `", "org": "octo-org", "state": "approved", "reviewer": "alice", "justification": "ci"},
		{"token_sha256": "` + hashOf(written) + `", "org": "octo-org", "state": "approved", "reviewer": "alice", "justification": "ci"}]}`
	g := startGateOnStore(t, freeAddr(t), "", func(bin, dir, store string) {
		runCLI(t, bin, nil, "store", "import", "--store", store, writeFile(t, dir, "old-export.json", export))
		// The second token's row as the earlier opa-pat wrote it.
		db, err := sql.Open("sqlite", store)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		res, err := db.ExecContext(t.Context(), `UPDATE tokens SET permissions = 'metadata=read,variables=write',
			packed = replace(packed, 'actions_variables=write,metadata=read', 'metadata=read,variables=write') WHERE name = 'old-write'`)
		if err != nil {
			t.Fatal(err)
		}
		var stored string
		if err := db.QueryRowContext(t.Context(), `SELECT permissions FROM tokens WHERE name = 'old-write'`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		var packed string
		if err := db.QueryRowContext(t.Context(), `SELECT packed FROM tokens WHERE name = 'old-write'`).Scan(&packed); err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 || stored != "metadata=read,variables=write" || !strings.Contains(packed, "\x1fmetadata=read,variables=write\x1f") {
			t.Fatalf("rewrote %d rows to %q, packed %q", n, stored, packed)
		}
		if err := db.QueryRowContext(t.Context(), `SELECT permissions FROM tokens WHERE name = 'old-read'`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != "actions_variables=read,metadata=read" {
			t.Fatalf("imported as %q; want GitHub's name", stored)
		}
		// The import stored the REST API's spelling; the row is written
		// back with the token pages' (an earlier opa-pat stored either).
		if err := db.QueryRowContext(t.Context(), `SELECT permissions FROM tokens WHERE name = 'old-spelled'`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != "email_addresses=read,git_ssh_keys=write,metadata=read" {
			t.Fatalf("imported as %q; want the REST API's spelling", stored)
		}
		res, err = db.ExecContext(t.Context(), `UPDATE tokens SET permissions = 'emails=read,keys=write,metadata=read',
			packed = replace(packed, 'email_addresses=read,git_ssh_keys=write,metadata=read', 'emails=read,keys=write,metadata=read') WHERE name = 'old-spelled'`)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(t.Context(), `SELECT packed FROM tokens WHERE name = 'old-spelled'`).Scan(&packed); err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 || !strings.Contains(packed, "\x1femails=read,keys=write,metadata=read\x1f") {
			t.Fatalf("rewrote %d rows, packed %q", n, packed)
		}
	})

	notAccessible := `Resource not accessible by personal access token: the request needs the "actions_variables" permission at "write" or above and the token has "read"; edit the token's permissions`
	for _, tc := range []struct {
		note, method, path, raw string
		status                  int
		message                 string
	}{
		{"imported: read", "GET", "/repos/octo-org/app/actions/variables", imported, 200, ""},
		{"imported: an organization's variables of the repository", "GET", "/repos/octo-org/app/actions/organization-variables", imported, 200, ""},
		{"imported: no write", "POST", "/repos/octo-org/app/actions/variables", imported, 403, notAccessible},
		{"written: read", "GET", "/repos/octo-org/app/actions/variables/NAME", written, 200, ""},
		{"written: write", "PATCH", "/repos/octo-org/app/actions/variables/NAME", written, 200, ""},
		{"written: nothing else", "GET", "/repos/octo-org/app/actions/secrets", written, 403,
			`Resource not accessible by personal access token: the request needs the "secrets" permission at "read" or above and the token does not have it; edit the token's permissions`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			_, got := g.check(t, eaRequest(tc.method, tc.path, map[string]string{"authorization": "Bearer " + tc.raw}))
			if got.status != tc.status || got.message != tc.message {
				t.Fatalf("%s %s: %d %q; want %d %q", tc.method, tc.path, got.status, got.message, tc.status, tc.message)
			}
		})
	}

	// A service asking the decision itself, with the earlier name; and on
	// bob's own account with either spelling of an account permission.
	emailsHeldRead := `Resource not accessible by personal access token: the request needs the "email_addresses" permission at "write" or above and the token has "read"; edit the token's permissions`
	for _, tc := range []struct {
		raw, action, permission string
		allow                   bool
		reason                  string
	}{
		{written, "write", "variables", true, ""}, {imported, "read", "variables", true, ""}, {imported, "write", "variables", false, notAccessible},
		{spelled, "read", "email_addresses", true, ""}, {spelled, "read", "emails", true, ""},
		{spelled, "write", "emails", false, emailsHeldRead}, {spelled, "write", "email_addresses", false, emailsHeldRead},
		{spelled, "write", "git_ssh_keys", true, ""}, {spelled, "write", "keys", true, ""},
	} {
		resource := map[string]any{"owner": "octo-org", "repository": "app"}
		if tc.raw == spelled {
			resource = map[string]any{"owner": "bob"}
		}
		b, _ := json.Marshal(map[string]any{"input": map[string]any{
			"credential": map[string]any{"type": "pat", "token": tc.raw}, "resource": resource,
			"action": tc.action, "permission": tc.permission,
		}})
		resp, err := http.Post("http://"+g.api+"/v1/data/pat/decision", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out struct {
			Result struct {
				Allow   bool     `json:"allow"`
				Reasons []string `json:"reasons"`
			} `json:"result"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("%s", body)
		}
		if out.Result.Allow != tc.allow || (!tc.allow && (len(out.Result.Reasons) != 1 || out.Result.Reasons[0] != tc.reason)) {
			t.Errorf("permission %q, %s: allow %t, reasons %q; want %t %q", tc.permission, tc.action, out.Result.Allow, out.Result.Reasons, tc.allow, tc.reason)
		}
	}
}
