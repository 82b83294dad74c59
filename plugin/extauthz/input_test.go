package extauthz

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/encoding/protojson"
)

type inputFixture struct {
	Note    string          `json:"note"`
	Request json.RawMessage `json:"request"`
	Input   json.RawMessage `json:"input"`
}

func readFixtures[T any](t *testing.T, path string) []T {
	t.Helper()
	bs, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	if err := json.Unmarshal(bs, &out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

func checkRequest(t *testing.T, raw []byte) *authv3.CheckRequest {
	t.Helper()
	var req authv3.CheckRequest
	if err := protojson.Unmarshal(raw, &req); err != nil {
		t.Fatalf("request fixture: %v", err)
	}
	return &req
}

func TestBuildInput(t *testing.T) {
	for _, tc := range readFixtures[inputFixture](t, "testdata/input.json") {
		t.Run(tc.Note, func(t *testing.T) {
			got, err := BuildInput(checkRequest(t, tc.Request))
			if err != nil {
				t.Fatal(err)
			}
			want, err := ast.ValueFromReader(bytes.NewReader(tc.Input))
			if err != nil {
				t.Fatal(err)
			}
			if got.Compare(want) != 0 {
				t.Fatalf("input:\ngot  %v\nwant %v", got, want)
			}
		})
	}
}

// The attributes must read exactly as protojson writes them (what
// opa-envoy-plugin feeds its policies), header_map and header names not in
// lower case (which Envoy never sends) aside.
func TestBuildInputMatchesProtojson(t *testing.T) {
	for _, tc := range readFixtures[inputFixture](t, "testdata/input.json") {
		req := checkRequest(t, tc.Request)
		if req.GetAttributes().GetRequest().GetHttp().GetHeaderMap() != nil || req.GetAttributes() == nil {
			continue
		}
		if slices.ContainsFunc(slices.Collect(maps.Keys(req.GetAttributes().GetRequest().GetHttp().GetHeaders())), hasUpper) {
			continue
		}
		t.Run(tc.Note, func(t *testing.T) {
			bs, err := protojson.Marshal(req.GetAttributes())
			if err != nil {
				t.Fatal(err)
			}
			want, err := ast.ValueFromReader(bytes.NewReader(bs))
			if err != nil {
				t.Fatal(err)
			}
			in, err := BuildInput(req)
			if err != nil {
				t.Fatal(err)
			}
			got := in.(ast.Object).Get(ast.StringTerm("attributes")).Value
			if got.Compare(want) != 0 {
				t.Fatalf("attributes:\ngot  %v\nwant %v", got, want)
			}
		})
	}
}

func TestBuildInputBadPath(t *testing.T) {
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/repos/octo-org/%zz"},
	}}}
	if _, err := BuildInput(req); err != errBadPath {
		t.Fatalf("got %v, want %v", err, errBadPath)
	}
}

// A body is parsed when it is one JSON value and nothing else but white
// space; one cut short, by its length or as Envoy says with
// x-envoy-auth-partial-body, is truncated.
func TestParsedBody(t *testing.T) {
	lfs := headerList{{"content-type", "application/vnd.git-lfs+json"}}
	with := func(h ...[2]string) headerList { return append(slices.Clone(lfs), h...) }
	for _, tc := range []struct {
		note      string
		body      string
		headers   headerList
		want      string
		truncated bool
	}{
		{note: "one value", body: `{"operation": "download"}`, headers: lfs, want: `{"operation": "download"}`},
		{note: "white space after it", body: "{\"operation\": \"download\"}\r\n\t ", headers: lfs, want: `{"operation": "download"}`},
		{note: "junk after it", body: `{"operation": "download"} xx`, headers: lfs, want: `null`},
		{note: "a comment after it", body: `{"operation": "download"} // upload`, headers: lfs, want: `null`},
		{note: "a second value", body: `{"operation": "download"}{"operation": "upload"}`, headers: lfs, want: `null`},
		{note: "not JSON", body: `operation=download`, headers: lfs, want: `null`},
		{note: "not a JSON media type", body: `{"operation": "download"}`, headers: headerList{{"content-type", "text/plain"}}, want: `null`},
		{note: "cut short by its length", body: `{"operation": "download"}`, headers: with([2]string{"content-length", "100"}), want: `null`, truncated: true},
		{note: "cut short, Envoy says", body: `{"operation": "download"}`, headers: with([2]string{"x-envoy-auth-partial-body", "true"}), want: `null`, truncated: true},
		{note: "whole, Envoy says", body: `{"operation": "download"}`, headers: with([2]string{"x-envoy-auth-partial-body", "false"}), want: `{"operation": "download"}`},
		{note: "a key twice", body: `{"operation": "upload", "operation": "download"}`, headers: lfs, want: `null`},
		{note: "a key twice, once escaped", body: `{"operation": "upload", "\u006fperation": "download"}`, headers: lfs, want: `null`},
		{note: "a key twice in a nested object", body: `{"objects": [{"oid": "a"}, {"oid": "b", "size": 1, "oid": "c"}], "operation": "download"}`, headers: lfs, want: `null`},
		{note: "one key in two objects", body: `{"objects": [{"oid": "a", "size": 1}, {"oid": "b", "size": 2}], "operation": "download", "ref": {"name": "x"}}`, headers: lfs,
			want: `{"objects": [{"oid": "a", "size": 1}, {"oid": "b", "size": 2}], "operation": "download", "ref": {"name": "x"}}`},
		{note: "keys in other cases", body: `{"operation": "download", "Operation": "upload"}`, headers: lfs, want: `{"operation": "download", "Operation": "upload"}`},
		{note: "a key as a value", body: `{"operation": "operation", "x": ["operation", {"operation": 1}]}`, headers: lfs, want: `{"operation": "operation", "x": ["operation", {"operation": 1}]}`},
		// Go's reader reads both as U+FFFD without an error; others keep,
		// drop or refuse them.
		{note: "a lone surrogate", body: `{"operation": "download", "objects": [{"oid": "\ud800"}]}`, headers: lfs, want: `null`},
		{note: "a lone low surrogate in a key", body: `{"operation": "download", "\udc00x": 1}`, headers: lfs, want: `null`},
		{note: "a surrogate pair", body: `{"operation": "download", "ref": "\ud83d\ude00"}`, headers: lfs, want: `{"operation": "download", "ref": "😀"}`},
		{note: "an escaped backslash before ud800", body: `{"operation": "download", "ref": "\\ud800"}`, headers: lfs, want: `{"operation": "download", "ref": "\\ud800"}`},
		{note: "bytes that are not UTF-8 (a raw_body)", body: "{\"operation\": \"download\", \"ref\": \"\xff\"}", headers: lfs, want: `null`},
	} {
		t.Run(tc.note, func(t *testing.T) {
			got, truncated := parsedBody(tc.body, tc.headers)
			want := ast.MustParseTerm(tc.want).Value
			if got.Compare(want) != 0 || truncated != tc.truncated {
				t.Fatalf("got %v, truncated %v; want %v, truncated %v", got, truncated, want, tc.truncated)
			}
		})
	}
}

// Envoy fills headers or header_map; a request with both has both read,
// repeated names joined, as within header_map.
func TestHeadersAndHeaderMap(t *testing.T) {
	h := &authv3.AttributeContext_HttpRequest{
		Headers: map[string]string{"authorization": "Bearer a", "X-Pat-A": "1"},
		HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: "Authorization", Value: "Bearer b"},
			{Key: "x-pat-b", RawValue: []byte("2")},
		}},
	}
	got := httpHeaders(h)
	slices.SortFunc(got, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	want := headerList{{"authorization", "Bearer a,Bearer b"}, {"x-pat-a", "1"}, {"x-pat-b", "2"}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A fragment ends the request target, also before its "?".
func TestParsePathFragment(t *testing.T) {
	for _, tc := range []struct{ target, path, query string }{
		{"/o/r.git/info/refs#?service=git-upload-pack", `["o", "r.git", "info", "refs"]`, `{}`},
		{"/o/r.git/info/refs?service=git-upload-pack#x", `["o", "r.git", "info", "refs"]`, `{"service": ["git-upload-pack"]}`},
		{"/o/r#a?b/c", `["o", "r"]`, `{}`},
	} {
		path, query, err := parsePath(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if path.Compare(ast.MustParseTerm(tc.path).Value) != 0 || query.Compare(ast.MustParseTerm(tc.query).Value) != 0 {
			t.Errorf("%s: path %v, query %v; want %s, %s", tc.target, path, query, tc.path, tc.query)
		}
	}
}
