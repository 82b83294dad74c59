package extauthz

import (
	"bytes"
	"encoding/json"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

type responseFixture struct {
	Note           string            `json:"note"`
	Decision       json.RawMessage   `json:"decision"`
	RequestHeaders map[string]string `json:"request_headers"`
	Response       json.RawMessage   `json:"response"`
	Error          string            `json:"error"`
}

func TestBuildResponse(t *testing.T) {
	for _, tc := range readFixtures[responseFixture](t, "testdata/response.json") {
		t.Run(tc.Note, func(t *testing.T) {
			var decision ast.Value
			if string(tc.Decision) != "null" {
				v, err := ast.ValueFromReader(bytes.NewReader(tc.Decision))
				if err != nil {
					t.Fatal(err)
				}
				decision = v
			}
			got, err := BuildResponse(decision, tc.RequestHeaders)
			if tc.Error != "" {
				if err == nil || err.Error() != tc.Error {
					t.Fatalf("error: got %v, want %s", err, tc.Error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want authv3.CheckResponse
			if err := protojson.Unmarshal(tc.Response, &want); err != nil {
				t.Fatalf("response fixture: %v", err)
			}
			if !proto.Equal(got, &want) {
				t.Fatalf("response:\ngot  %v\nwant %v", protojson.Format(got), protojson.Format(&want))
			}
		})
	}
}
