package extauthz

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opa-pat/opa-pat/plugin/token"
)

func TestLoggedRequestID(t *testing.T) {
	const custom = "acme3BVnzOBLArUHCUKpfbhixfghiTrClD0WxOTk" // a classic token of the prefix "acme"
	for _, tc := range []struct {
		note    string
		id      string
		headers headerList
		want    string
	}{
		{note: "Envoy's", id: "5b1f2a9c-1c1d-4b8e-9f0a-3f5e8c1d2b7a", want: "5b1f2a9c-1c1d-4b8e-9f0a-3f5e8c1d2b7a"},
		{note: "none", id: "", want: ""},
		{note: "a W3C trace id", id: "4bf92f3577b34da6a3ce929d0e0e4736", want: "4bf92f3577b34da6a3ce929d0e0e4736"},
		{note: "a token", id: goodToken, want: redactedRequestID},
		{note: "a token inside", id: "req-" + goodToken + "-1", want: redactedRequestID},
		{note: "a token with %5F", id: strings.ReplaceAll(goodToken, "_", "%5F"), want: redactedRequestID},
		{note: "a token with \\u005f", id: strings.ReplaceAll(goodToken, "_", `\u005f`), want: redactedRequestID},
		{note: "every character escaped", id: "%67%68%70%5F" + goodToken[4:], want: redactedRequestID},
		{note: "the Bearer credential", id: custom, headers: headerList{{"authorization", "Bearer " + custom}}, want: redactedRequestID},
		{note: "the token scheme, any case", id: custom, headers: headerList{{"Authorization", "TOKEN " + custom}}, want: redactedRequestID},
		{note: "Basic's password", id: custom, headers: headerList{{"authorization", "Basic " + b64("git:"+custom)}}, want: redactedRequestID},
		{note: "a moved credential", id: custom, headers: headerList{{"x-forwarded-authorization", "Bearer " + custom}}, want: redactedRequestID},
		{note: "x-api-key", id: custom, headers: headerList{{"x-api-key", custom}}, want: redactedRequestID},
		{note: "Basic's short user name is no credential", id: "git-req-1", headers: headerList{{"authorization", "Basic " + b64("git:"+custom)}}, want: "git-req-1"},
		{note: "another request's credential", id: custom, headers: headerList{{"authorization", "Bearer somethingelse"}}, want: custom},
		{note: "Basic credentials of a token", id: "Basic " + b64("x:"+goodToken), want: redactedRequestID},
		{note: "Basic credentials of the request's own credential", id: "basic " + b64("git:"+custom), headers: headerList{{"authorization", "Bearer " + custom}}, want: redactedRequestID},
		{note: "Basic credentials of nothing secret", id: "Basic " + b64("git:somethingelse"), want: "Basic " + b64("git:somethingelse")},
	} {
		if got := loggedRequestID(tc.id, tc.headers); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.note, got, tc.want)
		}
	}
}

// A token of a prefix without "_" that the process knows (token_prefixes, as
// the plugin notes them), not the request's credential: as the mask does
// (log.rego, _prefix_shaped), the prefix in any case and 30 or more token
// characters with an upper-case letter or digit; words that start with the
// prefix stay.
func TestLoggedRequestIDCustomPrefix(t *testing.T) {
	const other = "zqxidZx9KqL2mNpR4sTuV6wXyA8bCdE0fGhJ1kLmN" // a classic token's shape after "zqxid"
	token.NotePrefixes(token.Prefixes{Classic: "zqxid", FineGrained: "zqxidfg-"})
	for _, tc := range []struct{ note, id, want string }{
		{"the token", other, redactedRequestID},
		{"inside", "req-" + other + "-1", redactedRequestID},
		{"the prefix in upper case", "ZQXID" + other[5:], redactedRequestID},
		{"the token in lower case", strings.ToLower(other), redactedRequestID},
		{"every character escaped", "%7A%71%78%69%64" + other[5:], redactedRequestID},
		{`the other prefix, which ends in "-"`, "zqxidfg-" + other[5:], redactedRequestID},
		{"a word", "zqxidcorp-5b1f2a9c", "zqxidcorp-5b1f2a9c"},
		{"a long lower-case word", "zqxidcorporationinternalservicesdivision", "zqxidcorporationinternalservicesdivision"},
		{"too short", "zqxidZx9KqL2mNpR4sTuV6wXyA8bCdE0f", "zqxidZx9KqL2mNpR4sTuV6wXyA8bCdE0f"},
	} {
		if got := loggedRequestID(tc.id, nil); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.note, got, tc.want)
		}
	}
}

// OPA's mask reaches an event's input and result, not custom.request_id,
// where the gate copies the request id (the client's x-request-id, which
// Envoy keeps with preserve_external_request_id).
func TestDecisionLogRequestID(t *testing.T) {
	f := newFixture(t, `{"addr": "127.0.0.1:0"}`)
	for _, id := range []string{goodToken, "5b1f2a9c-1c1d-4b8e-9f0a-3f5e8c1d2b7a"} {
		req := httpCheck("GET", "/repos/octo-org/app/contents/README.md", map[string]string{"authorization": "Bearer " + goodToken})
		req.Attributes.Request.Http.Id = id
		if _, err := f.client.Check(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	entries := f.console.Entries()
	if len(entries) != 2 {
		t.Fatalf("decision log: got %d entries, want 2", len(entries))
	}
	var ids []any
	for _, e := range entries {
		bs, err := json.Marshal(e.Fields)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(bs), goodToken) {
			t.Errorf("decision log carries the token: %s", bs)
		}
		custom, _ := e.Fields["custom"].(map[string]any)
		ids = append(ids, custom["request_id"])
	}
	if ids[0] != redactedRequestID || ids[1] != "5b1f2a9c-1c1d-4b8e-9f0a-3f5e8c1d2b7a" {
		t.Errorf("custom.request_id: got %v, want [%s 5b1f2a9c-1c1d-4b8e-9f0a-3f5e8c1d2b7a]", ids, redactedRequestID)
	}
}
