package admin

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/store/pgtest"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// A token store that cannot be reached (its database renamed away) is a
// 503 with Retry-After that says so and shows no internals, at
// authentication as at any other read; the cause goes to the log.
func TestStoreUnavailableIs503(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Database(t, "pat_admin_unavail_")
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m, err := plugins.New([]byte(`{}`), "test", inmem.New())
	if err != nil {
		t.Fatal(err)
	}
	srv := New(&Config{Addr: "127.0.0.1:0"}, Deps{Manager: m, Store: db, Prefixes: token.DefaultPrefixes})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	u, _ := url.Parse(dsn)
	name := strings.TrimPrefix(u.Path, "/")
	pgtest.Exec(t, pgtest.BaseDSN(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '`+name+`'`,
		`ALTER DATABASE `+name+` RENAME TO `+name+`_away`)
	defer pgtest.Exec(t, pgtest.BaseDSN(), `ALTER DATABASE `+name+`_away RENAME TO `+name)

	for _, path := range []string{"/user/personal-access-tokens", "/orgs/octo-org/personal-access-tokens"} {
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+gen(t, "classic"))
		r := send(t, req)
		doc := docUserTokens
		if strings.HasPrefix(path, "/orgs/") {
			doc = docListGrants
		}
		want := `{"message":"Service Unavailable: the token store is unavailable; try again shortly","documentation_url":"` + doc + `"}`
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "5" || r.body != want {
			t.Fatalf("GET %s with the database away: %d, Retry-After %q, %s\nwant 503, Retry-After 5, %s", path, r.status, r.header.Get("Retry-After"), r.body, want)
		}
	}
}

// An error that is not the store's unavailability stays a 500 without
// Retry-After: a store closed under the server (a bug).
func TestServerErrorIs500(t *testing.T) {
	f := newFixture(t, true)
	f.db.Close()
	r := f.do(t, "GET", "/user/personal-access-tokens", "Bearer "+f.raw["bob-user"], nil)
	want := `{"message":"Server Error: the admin API could not complete the request; see the server log","documentation_url":"` + docUserTokens + `"}`
	if r.status != http.StatusInternalServerError || r.header.Get("Retry-After") != "" || r.body != want {
		t.Fatalf("GET with the store closed: %d, Retry-After %q, %s\nwant 500, none, %s", r.status, r.header.Get("Retry-After"), r.body, want)
	}
}
