package admin

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/opa-pat/opa-pat/plugin/store"
)

// auditTokens lists the audit log at path and returns the token ids of its
// events.
func (f *fixture) auditTokens(t *testing.T, path string) []int64 {
	t.Helper()
	r := f.do(t, "GET", path, f.as("alice-admin"), nil)
	var events []auditJSON
	if r.status != 200 || json.Unmarshal([]byte(r.body), &events) != nil {
		t.Fatalf("%s: %d %s", path, r.status, r.body)
	}
	ids := []int64{}
	for _, e := range events {
		id := int64(0)
		if e.TokenID != nil {
			id = *e.TokenID
		}
		ids = append(ids, id)
	}
	return ids
}

// The audit log's token_id and request_id take the forms of the lists'
// token_id: token_id[]=44 was ignored (the whole log came back) and
// token_id=44,45 was a 422.
func TestAuditLogIDLists(t *testing.T) {
	f := newFixture(t, true)
	all, fg := f.tokenID(t, "bob-all"), f.tokenID(t, "alice-fg")
	whole := f.auditTokens(t, "/orgs/octo-org/audit-log?per_page=100")
	only := func(ids ...int64) []int64 {
		out := []int64{}
		for _, id := range whole {
			if slices.Contains(ids, id) {
				out = append(out, id)
			}
		}
		return out
	}
	if len(only(all)) == 0 || len(only(fg)) == 0 || len(only(all, fg)) == len(whole) {
		t.Fatalf("the fixture's log: %v", whole)
	}
	for _, tc := range []struct {
		q    string
		want []int64
	}{
		{fmt.Sprintf("token_id[]=%d", all), only(all)},
		{fmt.Sprintf("token_id=%d", all), only(all)},
		{fmt.Sprintf("token_id=%d,%d", all, fg), only(all, fg)},
		{fmt.Sprintf("token_id=%d&token_id=%d", all, fg), only(all, fg)},
		{fmt.Sprintf("token_id[]=%d&token_id[]=%d", all, fg), only(all, fg)},
		{fmt.Sprintf("token_id[]=%d&token_id=%d", all, fg), only(all, fg)},
	} {
		t.Run(tc.q, func(t *testing.T) {
			if got := f.auditTokens(t, "/orgs/octo-org/audit-log?per_page=100&"+tc.q); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	// request_id too: the bob-all token's request is request 1.
	if got := f.auditTokens(t, "/orgs/octo-org/audit-log?per_page=100&request_id[]=1"); len(got) == 0 || len(only(all)) < len(got) {
		t.Fatalf("request_id[]=1: %v", got)
	}
	for _, id := range f.auditTokens(t, "/orgs/octo-org/audit-log?per_page=100&request_id[]=1") {
		if id != all {
			t.Fatalf("request_id[]=1 lists an event of token %d", id)
		}
	}
	// The Link header carries the list as given.
	r := f.do(t, "GET", fmt.Sprintf("/orgs/octo-org/audit-log?per_page=1&token_id[]=%d&token_id[]=%d", all, fg), f.as("alice-admin"), nil)
	if want := fmt.Sprintf("%s/orgs/octo-org/audit-log?page=2&per_page=1&token_id%%5B%%5D=%d&token_id%%5B%%5D=%d>; rel=\"next\"", f.ts.URL, all, fg); r.status != 200 ||
		!startsWithLink(r.header.Get("Link"), want) {
		t.Fatalf("Link: %s\nwant <%s", r.header.Get("Link"), want)
	}
	// At most 50, as for the lists.
	r = f.do(t, "GET", "/orgs/octo-org/audit-log?request_id="+strings.Repeat("1,", 50)+"1", f.as("alice-admin"), nil)
	if want := invalidBody("AuditEvent", "request_id", "invalid", "request_id: at most 50 request ids, got 51", docAuditLog); r.status != 422 || r.body != want {
		t.Fatalf("51 request ids: %d %s", r.status, r.body)
	}
}

func startsWithLink(link, want string) bool {
	return len(link) > len(want) && link[1:len(want)+1] == want
}

// GitHub's audit log parameters this log does not implement are refused,
// not ignored: phrase=actor:bob would otherwise list every actor's events.
func TestAuditLogRefusesGitHubsOtherParameters(t *testing.T) {
	f := newFixture(t, true)
	for _, tc := range []struct{ query, field, message string }{
		{"phrase=actor:bob", "phrase", "phrase: GitHub's search phrases are not supported; filter with actor, action, token_id and request_id"},
		{"phrase=", "phrase", "phrase: GitHub's search phrases are not supported; filter with actor, action, token_id and request_id"},
		{"include=all", "include", "include: not supported: the log holds opa-pat's token events only"},
		{"after=MS42NjQ", "after", "after: cursors are not supported; page with page and per_page"},
		{"before=MS42NjQ", "before", "before: cursors are not supported; page with page and per_page"},
		{"order=asc", "order", `order: not supported but "desc": events come newest first`},
	} {
		t.Run(tc.query, func(t *testing.T) {
			r := f.do(t, "GET", "/orgs/octo-org/audit-log?"+tc.query, f.as("alice-admin"), nil)
			if want := invalidBody("AuditEvent", tc.field, "unsupported", tc.message, docAuditLog); r.status != 422 || r.body != want {
				t.Fatalf("got  %d %s\nwant 422 %s", r.status, r.body, want)
			}
		})
	}
	// order=desc is what the log does; a parameter of nobody's is ignored,
	// as on every endpoint.
	for _, q := range []string{"order=desc", "access_token=x"} {
		if r := f.do(t, "GET", "/orgs/octo-org/audit-log?"+q, f.as("alice-admin"), nil); r.status != 200 {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
	}
}

// An import's store.import event concerns no organization: the filter is
// taken but lists nothing on an organization's log, as documented, while
// the grants the import recorded are the organization's events.
func TestAuditLogStoreImportIsNoOrganizations(t *testing.T) {
	f := newFixture(t, true) // the fixture is an import
	if events, err := f.db.ListAudit(t.Context(), store.AuditFilter{Action: store.ActionStoreImport}); err != nil || len(events) == 0 {
		t.Fatalf("the store's log has no import: %v %v", events, err)
	}
	r := f.do(t, "GET", "/orgs/octo-org/audit-log?action=store.import", f.as("alice-admin"), nil)
	if r.status != 200 || r.body != "[]" {
		t.Fatalf("action=store.import: %d %s", r.status, r.body)
	}
	r = f.do(t, "GET", "/orgs/octo-org/audit-log?action=request.create", f.as("alice-admin"), nil)
	if r.status != 200 || !strings.Contains(r.body, `"via":"store.import"`) {
		t.Fatalf("the import's grants: %d %s", r.status, r.body)
	}
}
