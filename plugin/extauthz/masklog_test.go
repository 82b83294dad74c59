package extauthz

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/opa-pat/opa-pat/plugin/token/tokentest"
)

// A token that is not the request's credential, in places the decision-log
// mask must reach: Basic credentials that decode to it (in a Check's body,
// request id, metadata and context extensions, as in its headers and parsed
// body), and the path of a request whose query also carries a credential.
func TestDecisionLogMasksBasicAndPathSecrets(t *testing.T) {
	const other = "ghp_otherOTHERotherOTHERother0123456"
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("x:"+other))
	auth := func() map[string]string { return map[string]string{"authorization": "Bearer " + goodToken} }
	f := newFixture(t, `{"addr": "127.0.0.1:0"}`)
	for _, tc := range []struct {
		note string
		req  func() *authv3.CheckRequest
	}{
		{"a JSON body", func() *authv3.CheckRequest {
			h := auth()
			h["content-type"] = "application/json"
			req := httpCheck("POST", "/repos/octo-org/app/issues", h)
			req.Attributes.Request.Http.Body = `{"note": "` + basic + `"}`
			return req
		}},
		{"a text body", func() *authv3.CheckRequest {
			req := httpCheck("POST", "/repos/octo-org/app/issues", auth())
			req.Attributes.Request.Http.Body = "note: " + basic
			return req
		}},
		{"a body as bytes", func() *authv3.CheckRequest {
			req := httpCheck("POST", "/repos/octo-org/app/issues", auth())
			req.Attributes.Request.Http.RawBody = []byte("note: " + basic)
			return req
		}},
		{"the request id", func() *authv3.CheckRequest {
			req := httpCheck("GET", "/repos/octo-org/app", auth())
			req.Attributes.Request.Http.Id = basic
			return req
		}},
		{"metadata", func() *authv3.CheckRequest {
			req := httpCheck("GET", "/repos/octo-org/app", auth())
			s, err := structpb.NewStruct(map[string]any{"auth": basic})
			if err != nil {
				t.Fatal(err)
			}
			req.Attributes.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"jwt": s}}
			return req
		}},
		{"context extensions", func() *authv3.CheckRequest {
			req := httpCheck("GET", "/repos/octo-org/app", auth())
			req.Attributes.ContextExtensions = map[string]string{"auth": basic}
			return req
		}},
		{"the path, with a credential in the query", func() *authv3.CheckRequest {
			target := "/repos/octo-org/app/contents/" + other + "?access_token=x"
			h := auth()
			h[":path"] = target
			return httpCheck("GET", target, h)
		}},
	} {
		before := len(f.console.Entries())
		if _, err := f.client.Check(t.Context(), tc.req()); err != nil {
			t.Fatal(err)
		}
		entries := f.console.Entries()[before:]
		if len(entries) != 1 {
			t.Fatalf("%s: decision log: got %d entries, want 1", tc.note, len(entries))
		}
		bs, err := json.Marshal(entries[0].Fields)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{other, base64.StdEncoding.EncodeToString([]byte("x:" + other))} {
			if strings.Contains(string(bs), secret) {
				t.Errorf("%s: the decision log holds %s: %s", tc.note, secret, bs)
			}
		}
	}
}

// Whatever text stands around a token that is not the request's
// credential, in a header, the path, the query, the body or the request
// id, neither the decision log nor the answer holds any of its secret
// (tokentest.Leak).
func FuzzDecisionLogMask(f *testing.F) {
	fx := newFixture(f, `{"addr": "127.0.0.1:0"}`)
	tokentest.AddSeeds(f)
	f.Fuzz(func(t *testing.T, before, after string, random []byte, fine bool) {
		raw, prefix := tokentest.FromBytes(random, fine)
		text := before + raw + after
		for place, req := range map[string]*authv3.CheckRequest{
			"header": httpCheck("GET", "/repos/octo-org/app", map[string]string{"authorization": "Bearer " + goodToken, "x-note": text}),
			"path":   httpCheck("GET", "/repos/octo-org/app/contents/"+text, map[string]string{"authorization": "Bearer " + goodToken}),
			"query":  httpCheck("GET", "/repos/octo-org/app/contents/a?ref="+text, map[string]string{"authorization": "Bearer " + goodToken}),
			"body": func() *authv3.CheckRequest {
				r := httpCheck("POST", "/repos/octo-org/app/issues", map[string]string{"authorization": "Bearer " + goodToken})
				r.Attributes.Request.Http.Body = text
				return r
			}(),
			"request id": func() *authv3.CheckRequest {
				r := httpCheck("GET", "/repos/octo-org/app", map[string]string{"authorization": "Bearer " + goodToken})
				r.Attributes.Request.Http.Id = text
				return r
			}(),
		} {
			seen := len(fx.console.Entries())
			resp, err := fx.client.Check(t.Context(), req)
			if err != nil {
				continue // refused before any answer or log (a header that is not UTF-8, say)
			}
			entries := fx.console.Entries()[seen:]
			if place == "header" && len(entries) != 1 {
				t.Fatalf("decision log: got %d entries, want 1", len(entries))
			}
			var logged []byte
			for _, e := range entries {
				bs, err := json.Marshal(e.Fields)
				if err != nil {
					t.Fatal(err)
				}
				logged = append(logged, bs...)
			}
			answer := prototext.Format(resp)
			for what, out := range map[string]string{"the decision log": string(logged), "the answer": answer} {
				if leaked := tokentest.Leak(out, raw[len(prefix):], before, after); leaked != "" {
					t.Fatalf("%s in the %s: %q is left of the token's secret in %s: %s", text, place, leaked, what, out)
				}
			}
		}
	})
}
