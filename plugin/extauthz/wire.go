package extauthz

import (
	"context"
	"encoding/binary"
	"strings"
	"sync"
	"unicode/utf8"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// The gate's gRPC server reads a CheckRequest straight from its wire
// encoding into a checkInput. Decoding it into the generated message cost
// about 2.4 KB and 40 objects per Check, reading the message by reflection
// more; the request is now copied once into a string, and every string of
// the input is a piece of that copy.
//
// The decoder covers what Envoy sends: the HTTP request with its header map,
// the time, both peers and the context extensions. Anything else (metadata,
// a TLS session, raw headers, fields it does not know, a message sent twice,
// text that is not UTF-8, a malformed encoding) makes it decline, and the
// request is then decoded by protobuf as before, so every request reads the
// same either way (TestWireMatchesMessage, FuzzWireDecode).

// checkMethod is the full name of the one method the gate serves.
const checkMethod = "/envoy.service.auth.v3.Authorization/Check"

// checker is what serves checkService: the Server.
type checker interface {
	check(ctx context.Context, in *checkInput) *authv3.CheckResponse
	checkWire(ctx context.Context, in *checkInput) (*authv3.CheckResponse, *encodedAnswer)
	// undecodable counts a request that could not be decoded, which gRPC
	// answers with INTERNAL before any Check.
	undecodable()
}

// checkService is envoy.service.auth.v3.Authorization with a handler that
// receives requests decoded by checkCodec.
var checkService = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*checker)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Check", Handler: checkHandler}},
	Metadata:    "envoy/service/auth/v3/external_auth.proto",
}

func checkHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	c := srv.(checker)
	if interceptor != nil {
		var w wireCheck
		if err := dec(&w); err != nil {
			c.undecodable()
			return nil, err
		}
		info := &grpc.UnaryServerInfo{Server: srv, FullMethod: checkMethod}
		return interceptor(ctx, &w, info, func(ctx context.Context, _ any) (any, error) { return c.check(ctx, &w.in), nil })
	}
	// Without an interceptor nothing but check sees the request, and nothing
	// keeps it after: the input it builds holds the request's strings, not
	// the checkInput.
	w := wireChecks.Get().(*wireCheck)
	defer func() {
		w.in = checkInput{}
		wireChecks.Put(w)
	}()
	if err := dec(w); err != nil {
		c.undecodable()
		return nil, err
	}
	resp, wire := c.checkWire(ctx, &w.in)
	if resp != nil {
		return resp, nil
	}
	return wire, nil // a pointer: no allocation to box it
}

// encodedAnswer is a CheckResponse encoded (by proto.Marshal), which
// checkCodec sends as it is.
type encodedAnswer struct{ b []byte }

// decodeAnswer decodes an answer the gate encoded itself.
func decodeAnswer(wire *encodedAnswer) *authv3.CheckResponse {
	var resp authv3.CheckResponse
	if err := proto.Unmarshal(wire.b, &resp); err != nil {
		// The gate encoded it from a message: this cannot happen. Fail closed.
		return errorResponse(500, code.Code_INTERNAL, "Internal Server Error")
	}
	return &resp
}

// wireCheck is what checkCodec decodes a Check's request into.
type wireCheck struct{ in checkInput }

var wireChecks = sync.Pool{New: func() any { return new(wireCheck) }}

// checkCodec is the gate server's codec: protobuf's, except for a Check's
// request.
type checkCodec struct{ proto encoding.CodecV2 }

func newCheckCodec() checkCodec { return checkCodec{proto: encoding.GetCodecV2(grpcproto.Name)} }

func (c checkCodec) Name() string { return grpcproto.Name }

func (c checkCodec) Marshal(v any) (mem.BufferSlice, error) {
	if a, ok := v.(*encodedAnswer); ok {
		// Shared and never changed: a buffer that gRPC's Free leaves alone.
		return mem.BufferSlice{mem.SliceBuffer(a.b)}, nil
	}
	return c.proto.Marshal(v)
}

func (c checkCodec) Unmarshal(data mem.BufferSlice, v any) error {
	w, ok := v.(*wireCheck)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return w.in.decode(buf.ReadOnlyData())
}

// decodeCheck reads an encoded CheckRequest.
func decodeCheck(b []byte) (*checkInput, error) {
	in := new(checkInput)
	return in, in.decode(b)
}

// decode reads an encoded CheckRequest into in, which is empty: straight
// from the wire when the fast decoder covers it, through the generated
// message otherwise.
func (in *checkInput) decode(b []byte) error {
	if in.readWire(string(b)) {
		return nil
	}
	*in = checkInput{}
	var msg authv3.CheckRequest
	if err := proto.Unmarshal(b, &msg); err != nil {
		return err
	}
	*in = *fromMessage(&msg)
	return nil
}

// Wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// wireField is one field of an encoded message.
type wireField struct {
	num uint64
	typ uint64
	v   uint64 // a varint's or a fixed field's value
	b   string // a length-delimited field's content
}

// nextField reads the field at the start of s; ok is false for a malformed
// field and for groups, which the decoder leaves to protobuf.
func nextField(s string) (f wireField, rest string, ok bool) {
	tag, n := uvarint(s)
	if n == 0 {
		return f, "", false
	}
	s = s[n:]
	f.num, f.typ = tag>>3, tag&7
	if f.num == 0 || f.num > 1<<29-1 {
		return f, "", false
	}
	switch f.typ {
	case wireVarint:
		if f.v, n = uvarint(s); n == 0 {
			return f, "", false
		}
		return f, s[n:], true
	case wireFixed64:
		if len(s) < 8 {
			return f, "", false
		}
		f.v = binary.LittleEndian.Uint64([]byte(s[:8]))
		return f, s[8:], true
	case wireFixed32:
		if len(s) < 4 {
			return f, "", false
		}
		f.v = uint64(binary.LittleEndian.Uint32([]byte(s[:4])))
		return f, s[4:], true
	case wireBytes:
		l, n := uvarint(s)
		if n == 0 || l > uint64(len(s)-n) {
			return f, "", false
		}
		f.b = s[n : n+int(l)]
		return f, s[n+int(l):], true
	}
	return f, "", false
}

// uvarint reads a varint; n is 0 when s does not start with one.
func uvarint(s string) (v uint64, n int) {
	for i := 0; i < len(s) && i < 10; i++ {
		c := s[i]
		if i == 9 && c > 1 {
			return 0, 0
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// text is a string field's content, when it is one: length-delimited and
// UTF-8, as protobuf requires of proto3 strings.
func (f wireField) text() (string, bool) {
	return f.b, f.typ == wireBytes && utf8.ValidString(f.b)
}

// eachField calls fn with each field of the encoded message s, in order.
// It returns false when s is malformed or fn refuses a field.
func eachField(s string, fn func(f wireField) bool) bool {
	for s != "" {
		f, rest, ok := nextField(s)
		if !ok || !fn(f) {
			return false
		}
		s = rest
	}
	return true
}

// readWire is the fast decoder; it returns false when it declines, and in
// is then partly filled.
func (in *checkInput) readWire(raw string) bool {
	return eachField(raw, func(f wireField) bool {
		// CheckRequest.attributes, once.
		if f.num != 1 || f.typ != wireBytes || in.hasAttributes {
			return false
		}
		in.hasAttributes = true
		return in.attributes(f.b)
	})
}

// AttributeContext: source 1, destination 2, request 4, context_extensions 10.
func (in *checkInput) attributes(s string) bool {
	return eachField(s, func(f wireField) bool {
		if f.typ != wireBytes {
			return false
		}
		switch f.num {
		case 1:
			return !in.source.set && wirePeer(f.b, &in.source)
		case 2:
			return !in.destination.set && wirePeer(f.b, &in.destination)
		case 4:
			if in.hasRequest {
				return false
			}
			in.hasRequest = true
			return in.request(f.b)
		case 10:
			return mapEntry(f.b, &in.contextExtensions)
		}
		return false
	})
}

// AttributeContext.Request: time 1, http 2.
func (in *checkInput) request(s string) bool {
	return eachField(s, func(f wireField) bool {
		switch {
		case f.typ != wireBytes:
			return false
		case f.num == 1 && !in.hasTime:
			in.hasTime = true
			return in.timestamp(f.b)
		case f.num == 2 && !in.hasHTTP:
			in.hasHTTP = true
			return in.http.decode(f.b)
		}
		return false
	})
}

// google.protobuf.Timestamp: seconds 1, nanos 2.
func (in *checkInput) timestamp(s string) bool {
	return eachField(s, func(f wireField) bool {
		switch {
		case f.typ != wireVarint:
			return false
		case f.num == 1:
			in.seconds = int64(f.v)
		case f.num == 2:
			in.nanos = int32(f.v)
		default:
			return false
		}
		return true
	})
}

// AttributeContext.HttpRequest: id 1, method 2, headers 3, path 4, host 5,
// scheme 6, query 7, fragment 8, size 9, protocol 10, body 11, raw_body 12.
// header_map (13) is left to protobuf.
func (h *httpFields) decode(s string) bool {
	if n := countField(s, 3); n > 0 {
		h.headers = make(headerList, 0, n)
	}
	defer func() { h.headers = lowerNames(h.headers) }()
	return eachField(s, func(f wireField) bool {
		var dst *string
		switch f.num {
		case 1:
			dst = &h.id
		case 2:
			dst = &h.method
		case 3:
			return f.typ == wireBytes && mapEntry(f.b, &h.headers)
		case 4:
			dst = &h.path
		case 5:
			dst = &h.host
		case 6:
			dst = &h.scheme
		case 7:
			dst = &h.query
		case 8:
			dst = &h.fragment
		case 9:
			h.size = int64(f.v)
			return f.typ == wireVarint
		case 10:
			dst = &h.protocol
		case 11:
			dst = &h.body
		case 12:
			h.rawBody = f.b
			return f.typ == wireBytes
		default:
			return false
		}
		var ok bool
		*dst, ok = f.text()
		return ok
	})
}

// countField counts the occurrences of field num in s (the entries of a
// map), so that the list for them is made once.
func countField(s string, num uint64) int {
	n := 0
	eachField(s, func(f wireField) bool {
		if f.num == num {
			n++
		}
		return true
	})
	return n
}

// mapEntry adds one entry of a map<string, string> (key 1, value 2; either
// may be left out, and is then "").
func mapEntry(s string, l *headerList) bool {
	var k, v string
	ok := eachField(s, func(f wireField) bool {
		text, ok := f.text()
		switch {
		case !ok:
			return false
		case f.num == 1:
			k = text
		case f.num == 2:
			v = text
		default:
			return false
		}
		return true
	})
	if ok {
		l.set(k, v)
	}
	return ok
}

// wirePeers caches peer values by their encoding; a peer whose encoding is
// longer than maxWirePeer (one with a certificate) is not kept.
var wirePeers = newValueCache[string]()

const maxWirePeer = 256

// peerField is a peer of the request: its value, or, for a TCP peer read
// from the wire and not in the cache, its encoding, built into a value only
// when the input is (a Check answered from the decision cache never is).
type peerField struct {
	set  bool
	v    ast.Value
	wire string
}

func (p *peerField) value() ast.Value {
	if p.v == nil {
		tcp, _ := readTCPPeer(p.wire) // read once already, in wirePeer
		p.v = tcp.value()
		if len(p.wire) <= maxWirePeer {
			wirePeers.put(strings.Clone(p.wire), p.v) // not a piece of the request: the cache outlives it
		}
	}
	return p.v
}

// wirePeer reads an encoded AttributeContext.Peer into *dst: from the
// cache, as a TCP peer to build later, or, when it has more than a socket
// address, a service and a principal, through protobuf.
func wirePeer(s string, dst *peerField) bool {
	*dst = peerField{set: true}
	if v, ok := wirePeers.get(s); ok {
		dst.v = v
		return true
	}
	if _, ok := readTCPPeer(s); ok {
		dst.wire = s
		return true
	}
	var p authv3.AttributeContext_Peer
	if err := proto.Unmarshal([]byte(s), &p); err != nil {
		return false
	}
	dst.v = buildPeer(&p) // not peerValue: one cache is enough
	if len(s) <= maxWirePeer {
		wirePeers.put(strings.Clone(s), dst.v)
	}
	return true
}

// tcpPeer is the peer Envoy sends for a TCP connection: Peer{address 1,
// service 2, principal 4} with Address{socket_address 1} and
// SocketAddress{address 2, port_value 3}; a TCP protocol (0) may be written.
type tcpPeer struct {
	service, principal, addr string
	port                     uint32
	hasAddress, hasPort      bool
}

// readTCPPeer reads a tcpPeer; anything else, labels and certificates
// included, it leaves to protobuf.
func readTCPPeer(s string) (p tcpPeer, ok bool) {
	ok = eachField(s, func(f wireField) bool {
		var ok bool
		switch f.num {
		case 1: // address, once, holding a socket address only
			if p.hasAddress || f.typ != wireBytes {
				return false
			}
			p.hasAddress = true
			a, after, ok := nextField(f.b)
			return ok && a.num == 1 && a.typ == wireBytes && after == "" && p.socketAddress(a.b)
		case 2:
			p.service, ok = f.text()
		case 4:
			p.principal, ok = f.text()
		}
		return ok
	})
	return p, ok
}

// socketAddress reads a SocketAddress with a TCP protocol, an address and
// a port number, each optional.
func (p *tcpPeer) socketAddress(s string) bool {
	return eachField(s, func(f wireField) bool {
		var ok bool
		switch {
		case f.num == 1 && f.typ == wireVarint && f.v == 0: // TCP
			ok = true
		case f.num == 2:
			p.addr, ok = f.text()
		case f.num == 3 && f.typ == wireVarint:
			p.port, p.hasPort, ok = uint32(f.v), true, true
		}
		return ok
	})
}

// value builds the peer as buildPeer builds it.
func (p tcpPeer) value() ast.Value {
	pairs := make([][2]*ast.Term, 0, 3)
	if p.hasAddress {
		sa := make([][2]*ast.Term, 0, 2)
		sa = appendString(sa, keyAddress, p.addr)
		if p.hasPort { // a oneof: written when set, even to zero
			sa = append(sa, [2]*ast.Term{keyPortValue, ast.UIntNumberTerm(uint64(p.port))})
		}
		pairs = append(pairs, [2]*ast.Term{keyAddress, ast.NewTerm(ast.NewObject(
			[2]*ast.Term{keySocketAddress, ast.NewTerm(ast.NewObject(sa...))}))})
	}
	pairs = appendString(pairs, keyService, p.service)
	pairs = appendString(pairs, keyPrincipal, p.principal)
	return ast.NewObject(pairs...)
}
