package extauthz

import (
	"encoding/base64"
	"errors"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/opa-pat/opa-pat/plugin/jsonkey"
)

// errBadPath is returned for a request path that cannot be decoded; the gate
// answers 400.
var errBadPath = errors.New("request path is not valid percent-encoding")

// Keys of the input document, interned once.
var (
	keyAttributes        = ast.InternedTerm("attributes")
	keyParsedPath        = ast.InternedTerm("parsed_path")
	keyParsedQuery       = ast.InternedTerm("parsed_query")
	keyParsedBody        = ast.InternedTerm("parsed_body")
	keyTruncatedBody     = ast.InternedTerm("truncated_body")
	keyVersion           = ast.InternedTerm("version")
	keyRequest           = ast.InternedTerm("request")
	keyHTTP              = ast.InternedTerm("http")
	keyTime              = ast.InternedTerm("time")
	keyID                = ast.InternedTerm("id")
	keyMethod            = ast.InternedTerm("method")
	keyHeaders           = ast.InternedTerm("headers")
	keyPath              = ast.InternedTerm("path")
	keyHost              = ast.InternedTerm("host")
	keyScheme            = ast.InternedTerm("scheme")
	keyQuery             = ast.InternedTerm("query")
	keyFragment          = ast.InternedTerm("fragment")
	keySize              = ast.InternedTerm("size")
	keyProtocol          = ast.InternedTerm("protocol")
	keyBody              = ast.InternedTerm("body")
	keyRawBody           = ast.InternedTerm("rawBody")
	keySource            = ast.InternedTerm("source")
	keyDestination       = ast.InternedTerm("destination")
	keyContextExtensions = ast.InternedTerm("contextExtensions")

	// versionTerm tells policies which API and encoding produced the input,
	// as opa-envoy-plugin does.
	versionTerm = ast.ObjectTerm(
		ast.Item(ast.InternedTerm("encoding"), ast.InternedTerm("protojson")),
		ast.Item(ast.InternedTerm("ext_authz"), ast.InternedTerm("v3")),
	)
)

// httpFields is what the gate reads of an AttributeContext.HttpRequest,
// taken from the message (fromMessage) or straight from the wire (wire.go).
type httpFields struct {
	id, method, path, host, scheme, query, fragment, protocol, body string
	rawBody                                                         string // bytes
	size                                                            int64
	headers                                                         headerList
}

// payload is the request's body as the gate reads it: body, or raw_body when
// Envoy packs it as bytes (pack_as_bytes). The input and the decision cache's
// key both take it from here.
func (h *httpFields) payload() string {
	if h.body != "" {
		return h.body
	}
	return h.rawBody
}

// headerList is a request's headers, each name once. It is nil when Envoy
// sent no headers at all, and then the input has no "headers" key.
type headerList [][2]string

// get returns the value of the header called name ("" when absent).
func (h headerList) get(name string) string {
	for _, kv := range h {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}

// set sets name to v, replacing an earlier value (a protobuf map's last
// entry for a key wins).
func (h *headerList) set(name, v string) {
	for i := range *h {
		if (*h)[i][0] == name {
			(*h)[i][1] = v
			return
		}
	}
	*h = append(*h, [2]string{name, v})
}

// checkInput is a CheckRequest reduced to what the gate builds the input
// from. Presence follows protobuf: a message field that was sent is in the
// input even when it is empty ({}), a map is there when it has entries.
type checkInput struct {
	hasAttributes       bool
	source, destination peerField
	hasRequest          bool
	hasTime             bool
	seconds             int64
	nanos               int32
	hasHTTP             bool
	http                httpFields
	contextExtensions   headerList
	// The attributes' other fields (metadata, TLS session), walked by
	// reflection; only requests decoded as messages have them.
	extra [][2]*ast.Term
}

// fromMessage reduces a CheckRequest message to a checkInput.
func fromMessage(req *authv3.CheckRequest) *checkInput {
	in := &checkInput{}
	attrs := req.GetAttributes()
	if attrs == nil {
		return in
	}
	in.hasAttributes = true
	attrs.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch fd.Name() {
		case "source":
			in.source = peerField{set: true, v: peerValue(attrs.GetSource())}
		case "destination":
			in.destination = peerField{set: true, v: peerValue(attrs.GetDestination())}
		case "request":
			in.hasRequest = true
		case "context_extensions":
			in.contextExtensions = mapList(attrs.GetContextExtensions())
		default:
			in.extra = append(in.extra, [2]*ast.Term{ast.InternedTerm(fd.JSONName()), ast.NewTerm(fieldValue(fd, v))})
		}
		return true
	})
	r := attrs.GetRequest()
	if t := r.GetTime(); t != nil {
		in.hasTime, in.seconds, in.nanos = true, t.GetSeconds(), t.GetNanos()
	}
	if h := r.GetHttp(); h != nil {
		in.hasHTTP = true
		in.http = httpFields{
			id: h.GetId(), method: h.GetMethod(), path: h.GetPath(), host: h.GetHost(), scheme: h.GetScheme(),
			query: h.GetQuery(), fragment: h.GetFragment(), protocol: h.GetProtocol(), body: h.GetBody(),
			rawBody: string(h.GetRawBody()), size: h.GetSize(), headers: httpHeaders(h),
		}
	}
	return in
}

// lowerNames gives every header a lower-case name. Envoy sends them so; a
// client that builds its own CheckRequest may not, and HTTP names are
// case-insensitive: "Authorization" is read as the policy's authorization,
// and a client's "X-Pat-User" is removed like "x-pat-user". Names that
// differ only in case are joined with ",", as Envoy joins repeated
// headers, in the order of their original names. Without an upper-case
// name, l is returned as it is, at the cost of one pass over the names.
func lowerNames(l headerList) headerList {
	if !slices.ContainsFunc(l, func(kv [2]string) bool { return hasUpper(kv[0]) }) {
		return l
	}
	sorted := slices.Clone(l)
	slices.SortFunc(sorted, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	out := make(headerList, 0, len(sorted))
next:
	for _, kv := range sorted {
		name := strings.ToLower(kv[0])
		for i := range out {
			if out[i][0] == name {
				out[i][1] += "," + kv[1]
				continue next
			}
		}
		out = append(out, [2]string{name, kv[1]})
	}
	return out
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// mapList turns a protobuf string map into a headerList (nil when empty).
func mapList(m map[string]string) headerList {
	if m == nil {
		return nil
	}
	l := make(headerList, 0, len(m))
	for k, v := range m {
		l = append(l, [2]string{k, v})
	}
	return l
}

// BuildInput converts a CheckRequest into the policy input, in the shape
// opa-envoy-plugin builds:
//
//	{"attributes": {...protojson of the attributes...},
//	 "parsed_path": ["repos", "octo-org", "app"], "parsed_query": {"service": ["git-upload-pack"]},
//	 "parsed_body": <JSON body or null>, "truncated_body": false,
//	 "version": {"encoding": "protojson", "ext_authz": "v3"}}
//
// When Envoy sends raw headers (encode_raw_headers: true), they are merged
// into attributes.request.http.headers (lower-case names, repeated headers
// joined with ",") and header_map itself is left out, so that policies and
// the decision-log mask see one place for headers.
func BuildInput(req *authv3.CheckRequest) (ast.Value, error) {
	return fromMessage(req).build()
}

// build makes the input.
func (in *checkInput) build() (ast.Object, error) {
	parsedPath, parsedQuery, err := parsePath(in.http.path)
	if err != nil {
		return nil, err
	}
	body, truncated := parsedBody(in.http.payload(), in.http.headers)

	input := ast.NewObjectWithCapacity(6)
	if in.hasAttributes {
		input.Insert(keyAttributes, ast.NewTerm(in.attributesValue()))
	}
	input.Insert(keyParsedPath, ast.NewTerm(parsedPath))
	input.Insert(keyParsedQuery, ast.NewTerm(parsedQuery))
	input.Insert(keyParsedBody, ast.NewTerm(body))
	input.Insert(keyTruncatedBody, ast.InternedTerm(truncated))
	input.Insert(keyVersion, versionTerm)
	return input, nil
}

// attributesValue is the protojson form of the attributes, built by hand
// from its parts. Objects are built from their pairs in one go (OPA's
// constructor sizes them once) and the request's strings come from one slab
// of terms.
func (in *checkInput) attributesValue() ast.Value {
	pairs := make([][2]*ast.Term, 0, 4+len(in.extra))
	if in.source.set {
		pairs = append(pairs, [2]*ast.Term{keySource, ast.NewTerm(in.source.value())})
	}
	if in.destination.set {
		pairs = append(pairs, [2]*ast.Term{keyDestination, ast.NewTerm(in.destination.value())})
	}
	if in.hasRequest {
		pairs = append(pairs, [2]*ast.Term{keyRequest, ast.NewTerm(in.requestValue())})
	}
	if len(in.contextExtensions) > 0 {
		pairs = append(pairs, [2]*ast.Term{keyContextExtensions, ast.NewTerm(stringMapValue(in.contextExtensions))})
	}
	pairs = append(pairs, in.extra...)
	return ast.NewObject(pairs...)
}

func (in *checkInput) requestValue() ast.Value {
	pairs := make([][2]*ast.Term, 0, 2)
	if in.hasTime {
		pairs = append(pairs, [2]*ast.Term{keyTime, ast.StringTerm(timestampString(in.seconds, in.nanos))})
	}
	if in.hasHTTP {
		pairs = append(pairs, [2]*ast.Term{keyHTTP, ast.NewTerm(httpValue(&in.http))})
	}
	return ast.NewObject(pairs...)
}

// stringMapValue is a string map's object.
func stringMapValue(l headerList) ast.Value {
	pairs := make([][2]*ast.Term, len(l))
	for i, kv := range l {
		pairs[i] = [2]*ast.Term{ast.StringTerm(kv[0]), ast.StringTerm(kv[1])}
	}
	return ast.NewObject(pairs...)
}

// termSlab hands out terms from one allocation.
type termSlab []ast.Term

func (s *termSlab) of(v ast.Value) *ast.Term {
	if len(*s) == 0 {
		*s = make([]ast.Term, 16)
	}
	t := &(*s)[0]
	*s = (*s)[1:]
	t.Value = v
	return t
}

func httpValue(h *httpFields) ast.Value {
	slab := make(termSlab, 12+len(h.headers))
	pairs := make([][2]*ast.Term, 0, 12)
	str := func(k *ast.Term, s string) {
		if s != "" {
			pairs = append(pairs, [2]*ast.Term{k, slab.of(ast.String(s))})
		}
	}
	str(keyID, h.id)
	str(keyMethod, h.method)
	if h.headers != nil {
		hs := make([][2]*ast.Term, len(h.headers))
		for i, kv := range h.headers {
			hs[i] = [2]*ast.Term{ast.InternedTerm(kv[0]), slab.of(ast.String(kv[1]))}
		}
		pairs = append(pairs, [2]*ast.Term{keyHeaders, ast.NewTerm(ast.NewObject(hs...))})
	}
	str(keyPath, h.path)
	str(keyHost, h.host)
	str(keyScheme, h.scheme)
	str(keyQuery, h.query)
	str(keyFragment, h.fragment)
	if h.size != 0 {
		pairs = append(pairs, [2]*ast.Term{keySize, slab.of(ast.String(strconv.FormatInt(h.size, 10)))})
	}
	str(keyProtocol, h.protocol)
	str(keyBody, h.body)
	if h.rawBody != "" {
		pairs = append(pairs, [2]*ast.Term{keyRawBody, slab.of(ast.String(base64.StdEncoding.EncodeToString([]byte(h.rawBody))))})
	}
	return ast.NewObject(pairs...)
}

// httpHeaders returns the request headers with lower-case names. With
// encode_raw_headers Envoy sends them as a list; repeated names are joined
// with ",", as Envoy itself does for the map. Envoy fills one of the two,
// never both; a request that has both has them merged, the map's first, so
// that no header of either goes unread (an Authorization header in each
// makes a credential no one can read, as a repeated one does).
func httpHeaders(h *authv3.AttributeContext_HttpRequest) headerList {
	hs := lowerNames(mapList(h.GetHeaders()))
	if h.GetHeaderMap() == nil {
		return hs
	}
	list := h.GetHeaderMap().GetHeaders()
	out := make(headerList, 0, len(hs)+len(list))
	out = append(out, hs...)
	for _, hv := range list {
		k := strings.ToLower(hv.GetKey())
		v := hv.GetValue()
		if raw := hv.GetRawValue(); len(raw) > 0 {
			v = string(raw)
		}
		joined := false
		for i := range out {
			if out[i][0] == k {
				out[i][1] += "," + v
				joined = true
				break
			}
		}
		if !joined {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

// parsePath splits the request target into decoded path segments and the
// query parameters. Segments are split before decoding, so an encoded "/"
// ("%2F") stays inside its segment, where the policy refuses it; a leading
// "/" is dropped, as opa-envoy-plugin does ("/a/b" -> ["a", "b"], "/" -> [""]).
func parsePath(target string) (*ast.Array, ast.Object, error) {
	// A fragment ends the target wherever it is, before a "?" too: in
	// "/o/r.git/info/refs#?service=git-upload-pack" the query is empty.
	target, _, _ = strings.Cut(target, "#")
	path, rawQuery, _ := strings.Cut(target, "?")

	path = strings.TrimLeft(path, "/")
	n := strings.Count(path, "/") + 1
	segs := make([]*ast.Term, 0, n)
	for seg := range strings.SplitSeq(path, "/") {
		if strings.IndexByte(seg, '%') >= 0 {
			dec, err := url.PathUnescape(seg)
			if err != nil {
				return nil, nil, errBadPath
			}
			seg = dec
		}
		segs = append(segs, ast.StringTerm(seg))
	}

	query := ast.NewObject()
	if rawQuery != "" {
		values, _ := url.ParseQuery(rawQuery) // like url.URL.Query: bad pairs are skipped
		for k, vs := range values {
			terms := make([]*ast.Term, len(vs))
			for i, v := range vs {
				terms[i] = ast.StringTerm(v)
			}
			query.Insert(ast.StringTerm(k), ast.ArrayTerm(terms...))
		}
	}
	return ast.NewArray(segs...), query, nil
}

// jsonMediaType reports whether a Content-Type is JSON: application/json, or
// a type with the +json suffix (RFC 6839), such as Git LFS's
// application/vnd.git-lfs+json.
func jsonMediaType(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// partialBodyHeader is the header Envoy sets on a request whose body it
// forwarded in part.
const partialBodyHeader = "x-envoy-auth-partial-body"

// parsedBody parses a JSON request body when Envoy forwarded one (with_request_body).
// A body cut short by Envoy (content-length larger than what arrived, or
// x-envoy-auth-partial-body: true, which Envoy sets when it forwards part of
// a body of unknown length with allow_partial_message) is reported as
// truncated and not parsed. A body that is not one JSON value is null: one
// followed by anything but white space ({"operation": "download"} xx) is
// read differently by different upstreams, so the gate reads it as none; so
// is one with a key twice in one object, of which some upstreams take the
// first value and others the last, and one that is not UTF-8 or escapes a
// lone UTF-16 surrogate, which some read as U+FFFD and others otherwise.
func parsedBody(body string, headers headerList) (ast.Value, bool) {
	if body == "" || !jsonMediaType(headers.get("content-type")) {
		return ast.Null{}, false
	}
	if cl, err := strconv.ParseInt(headers.get("content-length"), 10, 64); err == nil && cl > int64(len(body)) {
		return ast.Null{}, true
	}
	if strings.EqualFold(strings.TrimSpace(headers.get(partialBodyHeader)), "true") {
		return ast.Null{}, true
	}
	dec := util.NewJSONDecoder(strings.NewReader(body))
	var x any
	if err := dec.Decode(&x); err != nil {
		return ast.Null{}, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return ast.Null{}, false
	}
	// Bytes that are not UTF-8 (a raw_body; protobuf refuses them in body)
	// and an escape of half a UTF-16 surrogate pair alone ("\ud800") are
	// U+FFFD to Go's reader and something else to other readers.
	if !utf8.ValidString(body) || jsonkey.LoneSurrogate(body) >= 0 {
		return ast.Null{}, false
	}
	if _, twice := jsonkey.Repeated(strings.NewReader(body)); twice {
		return ast.Null{}, false
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		return ast.Null{}, false
	}
	return v, false
}
