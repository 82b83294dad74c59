package extauthz

import (
	"bytes"
	"errors"
	"net/url"
	"strconv"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// errBadPath is returned for a request path that cannot be decoded; the gate
// answers 400.
var errBadPath = errors.New("request path is not valid percent-encoding")

// Keys of the input document, interned once.
var (
	keyAttributes    = ast.InternedTerm("attributes")
	keyParsedPath    = ast.InternedTerm("parsed_path")
	keyParsedQuery   = ast.InternedTerm("parsed_query")
	keyParsedBody    = ast.InternedTerm("parsed_body")
	keyTruncatedBody = ast.InternedTerm("truncated_body")
	keyVersion       = ast.InternedTerm("version")
	keyRequest       = ast.InternedTerm("request")
	keyHTTP          = ast.InternedTerm("http")
	keyTime          = ast.InternedTerm("time")
	keyID            = ast.InternedTerm("id")
	keyMethod        = ast.InternedTerm("method")
	keyHeaders       = ast.InternedTerm("headers")
	keyPath          = ast.InternedTerm("path")
	keyHost          = ast.InternedTerm("host")
	keyScheme        = ast.InternedTerm("scheme")
	keyQuery         = ast.InternedTerm("query")
	keyFragment      = ast.InternedTerm("fragment")
	keySize          = ast.InternedTerm("size")
	keyProtocol      = ast.InternedTerm("protocol")
	keyBody          = ast.InternedTerm("body")
	keyRawBody       = ast.InternedTerm("rawBody")

	// versionTerm tells policies which API and encoding produced the input,
	// as opa-envoy-plugin does.
	versionTerm = ast.ObjectTerm(
		ast.Item(ast.InternedTerm("encoding"), ast.InternedTerm("protojson")),
		ast.Item(ast.InternedTerm("ext_authz"), ast.InternedTerm("v3")),
	)
)

// request is what the gate itself reads from a CheckRequest besides the input.
type request struct {
	headers map[string]string // lower-case names; nil when Envoy sent none
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
	in, _, err := buildInput(req)
	return in, err
}

func buildInput(req *authv3.CheckRequest) (ast.Object, request, error) {
	headers := httpHeaders(req.GetAttributes().GetRequest().GetHttp())
	in, err := buildInputWith(req, headers)
	return in, request{headers: headers}, err
}

// buildInputWith builds the input with the request's headers already read.
func buildInputWith(req *authv3.CheckRequest, headers map[string]string) (ast.Object, error) {
	meta := request{headers: headers}
	httpReq := req.GetAttributes().GetRequest().GetHttp()

	parsedPath, parsedQuery, err := parsePath(httpReq.GetPath())
	if err != nil {
		return nil, err
	}
	body, truncated := parsedBody(httpReq, meta.headers)

	input := ast.NewObjectWithCapacity(6)
	if attrs := req.GetAttributes(); attrs != nil {
		input.Insert(keyAttributes, ast.NewTerm(attributesValue(attrs, meta.headers)))
	}
	input.Insert(keyParsedPath, ast.NewTerm(parsedPath))
	input.Insert(keyParsedQuery, ast.NewTerm(parsedQuery))
	input.Insert(keyParsedBody, ast.NewTerm(body))
	input.Insert(keyTruncatedBody, ast.InternedTerm(truncated))
	input.Insert(keyVersion, versionTerm)
	return input, nil
}

// attributesValue is the protojson form of the attributes, with the HTTP
// request and the two peers built by hand (the hot part, peer.go) and
// everything else walked generically.
// Objects are built from their pairs in one go (OPA's constructor sizes
// them once) and the request's strings come from one slab of terms.
func attributesValue(attrs *authv3.AttributeContext, headers map[string]string) ast.Value {
	m := attrs.ProtoReflect()
	pairs := make([][2]*ast.Term, 0, m.Descriptor().Fields().Len())
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch fd.Name() {
		case "request":
			pairs = append(pairs, [2]*ast.Term{keyRequest, ast.NewTerm(requestValue(attrs.GetRequest(), headers))})
			return true
		case "source":
			pairs = append(pairs, [2]*ast.Term{ast.InternedTerm(fd.JSONName()), ast.NewTerm(peerValue(attrs.GetSource()))})
			return true
		case "destination":
			pairs = append(pairs, [2]*ast.Term{ast.InternedTerm(fd.JSONName()), ast.NewTerm(peerValue(attrs.GetDestination()))})
			return true
		}
		pairs = append(pairs, [2]*ast.Term{ast.InternedTerm(fd.JSONName()), ast.NewTerm(fieldValue(fd, v))})
		return true
	})
	return ast.NewObject(pairs...)
}

func requestValue(r *authv3.AttributeContext_Request, headers map[string]string) ast.Value {
	pairs := make([][2]*ast.Term, 0, 2)
	if t := r.GetTime(); t != nil {
		pairs = append(pairs, [2]*ast.Term{keyTime, ast.NewTerm(timestampValue(t.ProtoReflect()))})
	}
	if h := r.GetHttp(); h != nil {
		pairs = append(pairs, [2]*ast.Term{keyHTTP, ast.NewTerm(httpValue(h, headers))})
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

func httpValue(h *authv3.AttributeContext_HttpRequest, headers map[string]string) ast.Value {
	slab := make(termSlab, 12+len(headers))
	pairs := make([][2]*ast.Term, 0, 12)
	str := func(k *ast.Term, s string) {
		if s != "" {
			pairs = append(pairs, [2]*ast.Term{k, slab.of(ast.String(s))})
		}
	}
	str(keyID, h.GetId())
	str(keyMethod, h.GetMethod())
	if headers != nil {
		hs := make([][2]*ast.Term, 0, len(headers))
		for k, v := range headers {
			hs = append(hs, [2]*ast.Term{ast.InternedTerm(k), slab.of(ast.String(v))})
		}
		pairs = append(pairs, [2]*ast.Term{keyHeaders, ast.NewTerm(ast.NewObject(hs...))})
	}
	str(keyPath, h.GetPath())
	str(keyHost, h.GetHost())
	str(keyScheme, h.GetScheme())
	str(keyQuery, h.GetQuery())
	str(keyFragment, h.GetFragment())
	if s := h.GetSize(); s != 0 {
		pairs = append(pairs, [2]*ast.Term{keySize, slab.of(ast.String(strconv.FormatInt(s, 10)))})
	}
	str(keyProtocol, h.GetProtocol())
	str(keyBody, h.GetBody())
	if raw := h.GetRawBody(); len(raw) > 0 {
		pairs = append(pairs, [2]*ast.Term{keyRawBody, ast.NewTerm(scalarValue(rawBodyField, protoreflect.ValueOfBytes(raw)))})
	}
	return ast.NewObject(pairs...)
}

var rawBodyField = (&authv3.AttributeContext_HttpRequest{}).ProtoReflect().Descriptor().Fields().ByName("raw_body")

// httpHeaders returns the request headers with lower-case names. With
// encode_raw_headers Envoy sends them as a list; repeated names are joined
// with ",", as Envoy itself does for the map.
func httpHeaders(h *authv3.AttributeContext_HttpRequest) map[string]string {
	if hs := h.GetHeaders(); len(hs) > 0 || h.GetHeaderMap() == nil {
		return hs
	}
	list := h.GetHeaderMap().GetHeaders()
	out := make(map[string]string, len(list))
	for _, hv := range list {
		k := strings.ToLower(hv.GetKey())
		v := hv.GetValue()
		if raw := hv.GetRawValue(); len(raw) > 0 {
			v = string(raw)
		}
		if prev, ok := out[k]; ok {
			v = prev + "," + v
		}
		out[k] = v
	}
	return out
}

// parsePath splits the request target into decoded path segments and the
// query parameters. Segments are split before decoding, so an encoded "/"
// ("%2F") stays inside its segment, where the policy refuses it; a leading
// "/" is dropped, as opa-envoy-plugin does ("/a/b" -> ["a", "b"], "/" -> [""]).
func parsePath(target string) (*ast.Array, ast.Object, error) {
	path, rawQuery, _ := strings.Cut(target, "?")
	path, _, _ = strings.Cut(path, "#")
	rawQuery, _, _ = strings.Cut(rawQuery, "#")

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

// parsedBody parses a JSON request body when Envoy forwarded one (with_request_body).
// A body cut short by Envoy (content-length larger than what arrived) is
// reported as truncated and not parsed; a body that is not JSON is null.
func parsedBody(h *authv3.AttributeContext_HttpRequest, headers map[string]string) (ast.Value, bool) {
	body := h.GetBody()
	if body == "" || !jsonMediaType(headers["content-type"]) {
		return ast.Null{}, false
	}
	if cl, err := strconv.ParseInt(headers["content-length"], 10, 64); err == nil && cl > int64(len(body)) {
		return ast.Null{}, true
	}
	v, err := ast.ValueFromReader(bytes.NewReader([]byte(body)))
	if err != nil {
		return ast.Null{}, false
	}
	return v, false
}
