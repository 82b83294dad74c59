package extauthz

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// wireRequests are requests the fast decoder covers, as Envoy sends them.
func wireRequests() map[string]*authv3.CheckRequest {
	full := httpCheck("POST", "/api/v3/repos/octo-org/app/issues?state=open&label=a&label=b", map[string]string{
		":authority": "git.example.com", ":method": "POST", "authorization": "token ghp_x", "content-type": "application/json",
		"content-length": "17", "x-pat-user": "mallory",
	})
	h := full.Attributes.Request.Http
	h.Query, h.Fragment, h.Size, h.Body, h.RawBody = "state=open", "top", 17, `{"title": "bug"}`, []byte{0, 1, 0xff}
	full.Attributes.Request.Time = &timestamppb.Timestamp{Seconds: 1767225600, Nanos: 123456000}
	full.Attributes.Destination = &authv3.AttributeContext_Peer{Address: socket(&corev3.SocketAddress{
		Address: "10.0.0.2", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8443}}), Principal: "spiffe://git"}
	full.Attributes.ContextExtensions = map[string]string{"virtual_host": "git", "route": ""}

	withLabels := httpCheck("GET", "/", nil)
	withLabels.Attributes.Source.Labels = map[string]string{"app": "git"}
	withLabels.Attributes.Source.Certificate = strings.Repeat("-", 300) // longer than the peer cache keeps
	// Peers are decoded by protobuf (once per connection, then cached).
	pipe := httpCheck("GET", "/", nil)
	pipe.Attributes.Destination = &authv3.AttributeContext_Peer{Address: &corev3.Address{
		Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/run/envoy.sock"}}}}

	return map[string]*authv3.CheckRequest{
		"git clone":        httpCheck("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", basicAuth("x-access-token", goodToken)),
		"every field":      full,
		"labelled peer":    withLabels,
		"pipe peer":        pipe,
		"empty request":    {},
		"empty attributes": {Attributes: &authv3.AttributeContext{}},
		"empty parts": {Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{},
			Request: &authv3.AttributeContext_Request{
				Time: &timestamppb.Timestamp{}, Http: &authv3.AttributeContext_HttpRequest{},
			},
		}},
		"bad path": httpCheck("GET", "/repos/octo-org/%zz", nil),
	}
}

// Requests the fast decoder leaves to protobuf.
func declinedRequests() map[string]*authv3.CheckRequest {
	meta := httpCheck("GET", "/", nil)
	meta.Attributes.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		"envoy.filters.http.jwt_authn": {Fields: map[string]*structpb.Value{"sub": structpb.NewStringValue("bob")}},
	}}
	raw := httpCheck("GET", "/", nil)
	raw.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: "Authorization", RawValue: []byte("token ghp_x")}, {Key: "Accept", Value: "a"}, {Key: "accept", Value: "b"},
	}}
	tls := httpCheck("GET", "/", nil)
	tls.Attributes.TlsSession = &authv3.AttributeContext_TLSSession{Sni: "git.example.com"}
	return map[string]*authv3.CheckRequest{"metadata": meta, "raw headers": raw, "tls session": tls}
}

// decodeWire runs the fast decoder alone.
func decodeWire(raw string) (*checkInput, bool) {
	in := new(checkInput)
	return in, in.readWire(raw)
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	bs, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// sameInput builds the input of both readings of one request and requires
// the same outcome.
func sameInput(t *testing.T, got, want *checkInput) {
	t.Helper()
	gotIn, gotErr := got.build()
	wantIn, wantErr := want.build()
	if gotErr != wantErr {
		t.Fatalf("error %v, want %v", gotErr, wantErr)
	}
	if gotErr == nil && gotIn.Compare(wantIn) != 0 {
		t.Fatalf("input:\ngot  %v\nwant %v", gotIn, wantIn)
	}
	if got.http.id != want.http.id || got.http.method != want.http.method || got.http.path != want.http.path ||
		got.http.body != want.http.body || got.http.headers.get("authorization") != want.http.headers.get("authorization") {
		t.Fatalf("request fields %+v, want %+v", got.http, want.http)
	}
}

func TestWireMatchesMessage(t *testing.T) {
	for note, req := range wireRequests() {
		t.Run(note, func(t *testing.T) {
			in, ok := decodeWire(string(marshal(t, req)))
			if !ok {
				t.Fatal("the fast decoder declined")
			}
			sameInput(t, in, fromMessage(req))
		})
	}
	for _, tc := range readFixtures[inputFixture](t, "testdata/input.json") {
		t.Run(tc.Note, func(t *testing.T) {
			req := checkRequest(t, tc.Request)
			in, err := decodeCheck(marshal(t, req))
			if err != nil {
				t.Fatal(err)
			}
			sameInput(t, in, fromMessage(req))
		})
	}
	for note, req := range declinedRequests() {
		t.Run(note, func(t *testing.T) {
			bs := marshal(t, req)
			if _, ok := decodeWire(string(bs)); ok {
				t.Fatal("the fast decoder took a request it leaves to protobuf")
			}
			in, err := decodeCheck(bs)
			if err != nil {
				t.Fatal(err)
			}
			sameInput(t, in, fromMessage(req))
		})
	}
}

// Encodings protobuf's own encoder does not write, but Envoy's (or anyone's)
// may: protobuf's reading of them is the reference.
func TestWireEdgeCases(t *testing.T) {
	str := func(num protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), s)
	}
	msg := func(num protowire.Number, parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
	}
	varint := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
	}
	entry := func(k, v string) []byte { return msg(3, str(1, k), str(2, v)) }
	httpReq := func(parts ...[]byte) []byte { return msg(1, msg(4, msg(2, parts...))) }

	for _, tc := range []struct {
		note    string
		wire    []byte
		fast    bool   // the fast decoder takes it
		invalid string // protobuf refuses it with an error containing this
	}{
		{note: "a string sent twice: the last wins", wire: httpReq(str(2, "GET"), str(2, "POST")), fast: true},
		{note: "a header sent twice: the last wins", wire: httpReq(entry("a", "1"), entry("b", "2"), entry("a", "3")), fast: true},
		{note: "a map entry without its value", wire: httpReq(msg(3, str(1, "a"))), fast: true},
		{note: "a map entry without its key", wire: httpReq(msg(3, str(2, "v"))), fast: true},
		{note: "negative size", wire: httpReq(varint(9, ^uint64(0))), fast: true},
		{note: "nanos past 32 bits", wire: msg(1, msg(4, msg(1, varint(1, 1), varint(2, 1<<32|5)))), fast: true},
		{note: "the attributes sent twice merge", wire: append(msg(1, msg(4, msg(2, str(2, "GET")))), msg(1, msg(4, msg(2, str(4, "/a"))))...)},
		{note: "an unknown field is kept aside", wire: httpReq(str(99, "x"), str(2, "GET"))},
		{note: "a known field with another wire type", wire: httpReq(varint(2, 7))},
		{note: "header_map", wire: httpReq(msg(13, msg(1, str(1, "A"), str(2, "b"))))},
		{note: "a string that is not UTF-8", wire: httpReq(str(2, "G\xffT")), invalid: "UTF-8"},
		{note: "a header name that is not UTF-8", wire: httpReq(entry("\xff", "1")), invalid: "UTF-8"},
		{note: "cut short", wire: httpReq(str(2, "GET"))[:6], invalid: "invalid wire-format"},
		{note: "field number zero", wire: msg(0, nil), invalid: "invalid wire-format"},
	} {
		t.Run(tc.note, func(t *testing.T) {
			var req authv3.CheckRequest
			protoErr := proto.Unmarshal(tc.wire, &req)
			in, fast := decodeWire(string(tc.wire))
			if fast != tc.fast {
				t.Fatalf("fast decoder took it: %v, want %v", fast, tc.fast)
			}
			got, err := decodeCheck(tc.wire)
			if tc.invalid != "" {
				if err == nil || protoErr == nil || !strings.Contains(err.Error(), tc.invalid) {
					t.Fatalf("got %v (protobuf: %v), want an error about %q", err, protoErr, tc.invalid)
				}
				return
			}
			if err != nil || protoErr != nil {
				t.Fatalf("got %v (protobuf: %v)", err, protoErr)
			}
			if fast {
				sameInput(t, in, fromMessage(&req))
			}
			sameInput(t, got, fromMessage(&req))
		})
	}
}

// The peer cache keys by encoding: a second request from the same
// connection reuses the value, and the cache's key is a copy, not a piece
// of the request that would keep it alive.
func TestWirePeerCache(t *testing.T) {
	req := httpCheck("GET", "/", nil)
	req.Attributes.Source.Address.GetSocketAddress().Address = "192.0.2.77"
	peer := string(marshal(t, req.Attributes.Source))
	raw := string(marshal(t, req))
	first, ok := decodeWire(raw)
	if !ok {
		t.Fatal("declined")
	}
	if _, err := first.build(); err != nil { // builds the source, and caches it
		t.Fatal(err)
	}
	second, _ := decodeWire(string(marshal(t, req)))
	if second.source.v == nil || first.source.value() != second.source.value() {
		t.Fatal("the second request built the peer again")
	}
	// A new source is only read: built when the input is, which a Check
	// answered from the decision cache never needs.
	req.Attributes.Source.Address.GetSocketAddress().Address = "192.0.2.78"
	third, _ := decodeWire(string(marshal(t, req)))
	if third.source.v != nil || third.source.wire == "" {
		t.Fatalf("a new source was built while decoding: %+v", third.source)
	}
	wirePeers.mu.RLock()
	defer wirePeers.mu.RUnlock()
	for k := range wirePeers.m {
		if k != peer {
			continue
		}
		start, at := uintptr(unsafe.Pointer(unsafe.StringData(raw))), uintptr(unsafe.Pointer(unsafe.StringData(k)))
		if at >= start && at < start+uintptr(len(raw)) {
			t.Fatal("the cache's key is a piece of the request")
		}
		return
	}
	t.Fatal("the peer is not in the cache")
}

// Whatever the bytes, the fast decoder and protobuf agree: both refuse, or
// both read the same input.
func FuzzWireDecode(f *testing.F) {
	for _, req := range wireRequests() {
		f.Add(marshal(f, req))
	}
	for _, req := range declinedRequests() {
		f.Add(marshal(f, req))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req authv3.CheckRequest
		protoErr := proto.Unmarshal(b, &req)
		in, err := decodeCheck(b)
		if (err == nil) != (protoErr == nil) {
			t.Fatalf("decodeCheck: %v, protobuf: %v", err, protoErr)
		}
		if err != nil {
			return
		}
		if fast, ok := decodeWire(string(b)); ok {
			sameInput(t, fast, fromMessage(&req))
		}
		sameInput(t, in, fromMessage(&req))
	})
}

// readTCPPeer reads the peers of TCP connections as buildPeer builds them,
// and leaves every other peer to protobuf.
func TestTCPPeer(t *testing.T) {
	tcp := func(addr string, port uint32) *corev3.Address {
		return socket(&corev3.SocketAddress{Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}})
	}
	for _, tc := range []struct {
		note string
		peer *authv3.AttributeContext_Peer
		fast bool
	}{
		{note: "empty", peer: &authv3.AttributeContext_Peer{}, fast: true},
		{note: "ip and port", peer: &authv3.AttributeContext_Peer{Address: tcp("10.0.0.7", 53122)}, fast: true},
		{note: "port zero, set", peer: &authv3.AttributeContext_Peer{Address: tcp("10.0.0.7", 0)}, fast: true},
		{note: "no port", peer: &authv3.AttributeContext_Peer{Address: socket(&corev3.SocketAddress{Address: "::1"})}, fast: true},
		{note: "empty socket address", peer: &authv3.AttributeContext_Peer{Address: socket(&corev3.SocketAddress{})}, fast: true},
		{note: "service and principal", peer: &authv3.AttributeContext_Peer{Address: tcp("10.0.0.2", 8443), Service: "git", Principal: "spiffe://git"}, fast: true},
		{note: "UDP", peer: &authv3.AttributeContext_Peer{Address: socket(&corev3.SocketAddress{Protocol: corev3.SocketAddress_UDP, Address: "::1"})}},
		{note: "named port", peer: &authv3.AttributeContext_Peer{Address: socket(&corev3.SocketAddress{
			Address: "::1", PortSpecifier: &corev3.SocketAddress_NamedPort{NamedPort: "https"}})}},
		{note: "resolver", peer: &authv3.AttributeContext_Peer{Address: socket(&corev3.SocketAddress{Address: "git", ResolverName: "dns"})}},
		{note: "labels", peer: &authv3.AttributeContext_Peer{Address: tcp("10.0.0.7", 1), Labels: map[string]string{"app": "git"}}},
		{note: "certificate", peer: &authv3.AttributeContext_Peer{Certificate: "-----BEGIN"}},
		{note: "empty address", peer: &authv3.AttributeContext_Peer{Address: &corev3.Address{}}},
		{note: "pipe", peer: &authv3.AttributeContext_Peer{Address: &corev3.Address{
			Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/run/envoy.sock"}}}}},
	} {
		t.Run(tc.note, func(t *testing.T) {
			tcp, ok := readTCPPeer(string(marshal(t, tc.peer)))
			if ok != tc.fast {
				t.Fatalf("read it: %v, want %v", ok, tc.fast)
			}
			if got, want := tcp.value(), buildPeer(tc.peer); ok && got.Compare(want) != 0 {
				t.Fatalf("got  %v\nwant %v", got, want)
			}
		})
	}
	// A TCP protocol written out (Envoy's encoder may write zero values).
	sa := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 0)
	sa = protowire.AppendString(protowire.AppendTag(sa, 2, protowire.BytesType), "10.0.0.7")
	addr := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), sa)
	peer := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), addr)
	read, ok := readTCPPeer(string(peer))
	var p authv3.AttributeContext_Peer
	if err := proto.Unmarshal(peer, &p); err != nil || !ok || read.value().Compare(buildPeer(&p)) != 0 {
		t.Fatalf("TCP written out: %+v %v %v", read, ok, err)
	}
}

// checkHandler honours a unary interceptor (the gate configures none, but
// the handler must not skip one that is added): the interceptor sees the
// decoded request, and what it returns is the answer.
func TestCheckHandlerInterceptor(t *testing.T) {
	f := newFixture(t, `{"addr": "127.0.0.1:0"}`)
	wire := marshal(t, httpCheck("GET", "/octo-org/app.git/info/refs?service=git-upload-pack", basicAuth("x-access-token", goodToken)))
	dec := func(v any) error { return v.(*wireCheck).in.decode(wire) }
	var seen string
	intercept := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		seen = info.FullMethod + " " + req.(*wireCheck).in.http.path
		return handler(ctx, req)
	}
	resp, err := checkHandler(f.server, t.Context(), dec, intercept)
	if err != nil {
		t.Fatal(err)
	}
	if seen != "/envoy.service.auth.v3.Authorization/Check /octo-org/app.git/info/refs?service=git-upload-pack" {
		t.Fatalf("the interceptor saw %q", seen)
	}
	if code := resp.(*authv3.CheckResponse).GetStatus().GetCode(); code != 0 {
		t.Fatalf("status %d, want OK; %v", code, resp)
	}
	if _, err := checkHandler(f.server, t.Context(), func(any) error { return errors.New("bad frame") }, intercept); err == nil || err.Error() != "bad frame" {
		t.Fatalf("a decoding error: got %v", err)
	}
}

// An encoded answer decodes to the message it was encoded from; bytes that
// are not a CheckResponse decode to a 500 denial, never to an OK.
func TestDecodeAnswer(t *testing.T) {
	want := allowedBob()
	b, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeAnswer(&encodedAnswer{b: b}); !proto.Equal(got, want) {
		t.Fatalf("decoded %v, want %v", got, want)
	}
	got := decodeAnswer(&encodedAnswer{b: []byte{0x0a, 0xff}}) // field 1, a length past the end
	wantErr := denied(typev3.StatusCode_InternalServerError, `{"message":"Internal Server Error","documentation_url":"https://docs.github.com/rest"}`, jsonType)
	wantErr.Status.Code = int32(code.Code_INTERNAL)
	if !proto.Equal(got, wantErr) {
		t.Fatalf("decoding a broken answer: %v, want %v", got, wantErr)
	}
}
