package extauthz

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/opa-pat/opa-pat/plugin/token"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// patHeaderPrefix is the namespace of the headers the gate adds for the
// upstream. Client-sent headers in it never reach the upstream.
const patHeaderPrefix = "x-pat-"

// DecisionError is a decision the gate cannot turn into an answer: the wrong
// type, or a field of the wrong type. Field names the offending field.
type DecisionError struct {
	Field string
	Msg   string
}

func (e *DecisionError) Error() string {
	if e.Field == "" {
		return "decision: " + e.Msg
	}
	return fmt.Sprintf("decision field %q: %s", e.Field, e.Msg)
}

// ErrUndefinedDecision is returned when the decision path is undefined (no
// policy loaded, or the policy does not define it).
var ErrUndefinedDecision = errors.New("decision is undefined")

// outcome summarises an answer for metrics and logs.
type outcome struct {
	allowed  bool
	status   int       // the HTTP status Envoy answers with (200 when allowed)
	decision ast.Value // what the policy decided (kept by the cache)
}

// Fields of the decision object (opa-envoy-plugin's names, so that its
// policies carry over).
var (
	fieldAllowed         = ast.InternedTerm("allowed")
	fieldHTTPStatus      = ast.InternedTerm("http_status")
	fieldHeaders         = ast.InternedTerm("headers")
	fieldRespHeaders     = ast.InternedTerm("response_headers_to_add")
	fieldHeadersToRemove = ast.InternedTerm("request_headers_to_remove")
	fieldBody            = ast.InternedTerm("body")
	fieldDynamicMetadata = ast.InternedTerm("dynamic_metadata")
	fieldQueryToSet      = ast.InternedTerm("query_parameters_to_set")
	fieldQueryToRemove   = ast.InternedTerm("query_parameters_to_remove")
)

// BuildResponse turns a decision into Envoy's answer. The decision is a
// boolean or an object in opa-envoy-plugin's form:
//
//	{"allowed": bool, "http_status": 401, "headers": {...}, "body": "...",
//	 "response_headers_to_add": {...}, "request_headers_to_remove": [...],
//	 "dynamic_metadata": {...}, "query_parameters_to_set": {...},
//	 "query_parameters_to_remove": [...]}
//
// Headers are an object (name -> string or array of strings) or an array of
// such objects. Every header is set with append false (both the deprecated
// append wrapper and append_action, since Envoy's reading of an unset append
// changed between releases). On OK, client-sent x-pat-* headers that the
// decision does not set are listed in headers_to_remove (Envoy applies the
// removals after the sets, so the headers set here are not listed). A denial
// without http_status is 403. reqHeaders are the request's headers
// (lower-case names).
func BuildResponse(decision ast.Value, reqHeaders map[string]string) (*authv3.CheckResponse, error) {
	resp, _, err := buildResponse(decision, lowerNames(mapList(reqHeaders)))
	return resp, err
}

func buildResponse(decision ast.Value, reqHeaders headerList) (*authv3.CheckResponse, outcome, error) {
	var obj ast.Object
	switch d := decision.(type) {
	case ast.Boolean:
		if d {
			return okResponse(nil, nil, nil, reqHeaders), outcome{allowed: true, status: 200}, nil
		}
		return deniedResponse(403, nil, ""), outcome{status: 403}, nil
	case ast.Object:
		obj = d
	case nil:
		return nil, outcome{}, ErrUndefinedDecision
	default:
		return nil, outcome{}, &DecisionError{Msg: "want a boolean or an object, got " + ast.ValueName(decision)}
	}

	allowedTerm := obj.Get(fieldAllowed)
	if allowedTerm == nil {
		return nil, outcome{}, &DecisionError{Field: "allowed", Msg: "missing"}
	}
	allowed, ok := allowedTerm.Value.(ast.Boolean)
	if !ok {
		return nil, outcome{}, &DecisionError{Field: "allowed", Msg: "want a boolean, got " + ast.ValueName(allowedTerm.Value)}
	}

	headers, err := headerOptions(obj, fieldHeaders)
	if err != nil {
		return nil, outcome{}, err
	}

	if !allowed {
		status := 403
		if t := obj.Get(fieldHTTPStatus); t != nil {
			if status, err = httpStatus(t.Value); err != nil {
				return nil, outcome{}, err
			}
		}
		body := ""
		if t := obj.Get(fieldBody); t != nil {
			s, ok := t.Value.(ast.String)
			if !ok {
				return nil, outcome{}, &DecisionError{Field: "body", Msg: "want a string, got " + ast.ValueName(t.Value)}
			}
			body = string(s)
		}
		if token.Hidden(body) {
			// A denial's message may quote what the client sent (a
			// repository named like a token, say), and the client's answer
			// never carries a token: the status's own words replace it.
			body = plainBody(status)
		}
		resp := deniedResponse(status, headers, body)
		if resp.DynamicMetadata, err = dynamicMetadata(obj); err != nil {
			return nil, outcome{}, err
		}
		return resp, outcome{status: status}, nil
	}

	respHeaders, err := headerOptions(obj, fieldRespHeaders)
	if err != nil {
		return nil, outcome{}, err
	}
	remove, err := stringList(obj, fieldHeadersToRemove)
	if err != nil {
		return nil, outcome{}, err
	}
	resp := okResponse(headers, respHeaders, remove, reqHeaders)
	ok2 := resp.GetOkResponse()
	if ok2.QueryParametersToSet, err = queryParameters(obj); err != nil {
		return nil, outcome{}, err
	}
	if ok2.QueryParametersToRemove, err = stringList(obj, fieldQueryToRemove); err != nil {
		return nil, outcome{}, err
	}
	if resp.DynamicMetadata, err = dynamicMetadata(obj); err != nil {
		return nil, outcome{}, err
	}
	return resp, outcome{allowed: true, status: 200}, nil
}

// hasPatHeaders reports whether the client sent headers in the gate's
// namespace (which okResponse lists for removal).
func hasPatHeaders(h headerList) bool {
	for _, kv := range h {
		if isPatHeader(kv[0]) {
			return true
		}
	}
	return false
}

// isPatHeader reports whether a request header's (lower-case) name is in the
// gate's namespace: x-pat-*, also spelt with underscores (x_pat_user,
// x-pat_user), which Envoy lets through by default and CGI-style upstreams
// fold into the same variable as the gate's own header (HTTP_X_PAT_USER).
func isPatHeader(name string) bool {
	if len(name) < len(patHeaderPrefix) {
		return false
	}
	for i := range len(patHeaderPrefix) {
		c := name[i]
		if c == '_' {
			c = '-'
		}
		if c != patHeaderPrefix[i] {
			return false
		}
	}
	return true
}

// withClientPatHeaders is a shared answer (built for a request without
// x-pat-* headers) for a request that has some: an allowed answer gets a
// copy that also lists them for removal, as okResponse does; a denial is the
// same for every request.
func withClientPatHeaders(shared *authv3.CheckResponse, reqHeaders headerList) *authv3.CheckResponse {
	ok := shared.GetOkResponse()
	if ok == nil {
		return shared
	}
	resp := okResponse(ok.Headers, ok.ResponseHeadersToAdd, slices.Clone(ok.HeadersToRemove), reqHeaders)
	ok2 := resp.GetOkResponse()
	ok2.QueryParametersToSet, ok2.QueryParametersToRemove = ok.QueryParametersToSet, ok.QueryParametersToRemove
	resp.DynamicMetadata = shared.DynamicMetadata
	return resp
}

func okResponse(headers, respHeaders []*corev3.HeaderValueOption, remove []string, reqHeaders headerList) *authv3.CheckResponse {
	// Client-sent x-pat-* headers go, except those the decision sets (those
	// are overwritten, and a removal would undo the set).
	for _, kv := range reqHeaders {
		name := kv[0]
		if !isPatHeader(name) || slices.Contains(remove, name) {
			continue
		}
		if slices.ContainsFunc(headers, func(h *corev3.HeaderValueOption) bool { return strings.EqualFold(h.GetHeader().GetKey(), name) }) {
			continue
		}
		remove = append(remove, name)
	}
	slices.Sort(remove)
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code.Code_OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers:              headers,
			HeadersToRemove:      remove,
			ResponseHeadersToAdd: respHeaders,
		}},
	}
}

func deniedResponse(status int, headers []*corev3.HeaderValueOption, body string) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code.Code_PERMISSION_DENIED)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(status)},
			Headers: headers,
			Body:    body,
		}},
	}
}

// errorResponse is the answer when no decision could be made: a denial with
// the given status and a body that reveals nothing of the cause.
func errorResponse(status int, grpcCode code.Code, message string) *authv3.CheckResponse {
	body := messageBody(message)
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(status)},
			Headers: []*corev3.HeaderValueOption{header("content-type", "application/json; charset=utf-8")},
			Body:    body,
		}},
	}
}

const docURL = "https://docs.github.com/rest"

// plainBody is a denial's JSON body with the status's own text as message.
func plainBody(status int) string {
	message := http.StatusText(status)
	if message == "" {
		message = "Denied"
	}
	return messageBody(message)
}

// messageBody is the JSON body of an answer the gate words itself; message
// is one of its fixed texts, which need no escaping.
func messageBody(message string) string {
	return `{"message":"` + message + `","documentation_url":"` + docURL + `"}`
}

func header(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: v},
		Append:       wrapperspb.Bool(false),
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

func httpStatus(v ast.Value) (int, error) {
	n, ok := v.(ast.Number)
	if !ok {
		return 0, &DecisionError{Field: "http_status", Msg: "want a number, got " + ast.ValueName(v)}
	}
	i, ok := n.Int()
	if !ok {
		return 0, &DecisionError{Field: "http_status", Msg: fmt.Sprintf("%v is not an integer", n)}
	}
	if _, known := typev3.StatusCode_name[int32(i)]; !known || i < 100 {
		return 0, &DecisionError{Field: "http_status", Msg: fmt.Sprintf("%d is not an HTTP status Envoy knows", i)}
	}
	return i, nil
}

// headerOptions reads an object of headers (or an array of objects); names
// and values are kept as given, in a stable order.
func headerOptions(obj ast.Object, field *ast.Term) ([]*corev3.HeaderValueOption, error) {
	t := obj.Get(field)
	if t == nil {
		return nil, nil
	}
	name := string(field.Value.(ast.String))
	var out []*corev3.HeaderValueOption
	addObject := func(o ast.Object) error {
		for _, k := range o.Keys() {
			key, ok := k.Value.(ast.String)
			if !ok {
				return &DecisionError{Field: name, Msg: "header names must be strings, got " + ast.ValueName(k.Value)}
			}
			switch v := o.Get(k).Value.(type) {
			case ast.String:
				out = append(out, header(string(key), string(v)))
			case *ast.Array:
				for i := range v.Len() {
					s, ok := v.Elem(i).Value.(ast.String)
					if !ok {
						return &DecisionError{Field: name, Msg: fmt.Sprintf("header %q: want strings, got %s", string(key), ast.ValueName(v.Elem(i).Value))}
					}
					out = append(out, header(string(key), string(s)))
				}
			default:
				return &DecisionError{Field: name, Msg: fmt.Sprintf("header %q: want a string or an array of strings, got %s", string(key), ast.ValueName(v))}
			}
		}
		return nil
	}
	switch v := t.Value.(type) {
	case ast.Object:
		if err := addObject(v); err != nil {
			return nil, err
		}
	case *ast.Array:
		for i := range v.Len() {
			o, ok := v.Elem(i).Value.(ast.Object)
			if !ok {
				return nil, &DecisionError{Field: name, Msg: "want objects, got " + ast.ValueName(v.Elem(i).Value)}
			}
			if err := addObject(o); err != nil {
				return nil, err
			}
		}
	default:
		return nil, &DecisionError{Field: name, Msg: "want an object, got " + ast.ValueName(t.Value)}
	}
	return out, nil
}

// stringList reads an array (or set) of strings.
func stringList(obj ast.Object, field *ast.Term) ([]string, error) {
	t := obj.Get(field)
	if t == nil {
		return nil, nil
	}
	name := string(field.Value.(ast.String))
	var out []string
	add := func(e *ast.Term) error {
		s, ok := e.Value.(ast.String)
		if !ok {
			return &DecisionError{Field: name, Msg: "want strings, got " + ast.ValueName(e.Value)}
		}
		out = append(out, string(s))
		return nil
	}
	switch v := t.Value.(type) {
	case *ast.Array:
		for i := range v.Len() {
			if err := add(v.Elem(i)); err != nil {
				return nil, err
			}
		}
	case ast.Set:
		for _, e := range v.Slice() {
			if err := add(e); err != nil {
				return nil, err
			}
		}
	default:
		return nil, &DecisionError{Field: name, Msg: "want an array of strings, got " + ast.ValueName(t.Value)}
	}
	return out, nil
}

func queryParameters(obj ast.Object) ([]*corev3.QueryParameter, error) {
	t := obj.Get(fieldQueryToSet)
	if t == nil {
		return nil, nil
	}
	o, ok := t.Value.(ast.Object)
	if !ok {
		return nil, &DecisionError{Field: "query_parameters_to_set", Msg: "want an object, got " + ast.ValueName(t.Value)}
	}
	var out []*corev3.QueryParameter
	for _, k := range o.Keys() {
		key, kok := k.Value.(ast.String)
		val, vok := o.Get(k).Value.(ast.String)
		if !kok || !vok {
			return nil, &DecisionError{Field: "query_parameters_to_set", Msg: "want string names and values"}
		}
		out = append(out, &corev3.QueryParameter{Key: string(key), Value: string(val)})
	}
	return out, nil
}

func dynamicMetadata(obj ast.Object) (*structpb.Struct, error) {
	t := obj.Get(fieldDynamicMetadata)
	if t == nil {
		return nil, nil
	}
	if _, ok := t.Value.(ast.Object); !ok {
		return nil, &DecisionError{Field: "dynamic_metadata", Msg: "want an object, got " + ast.ValueName(t.Value)}
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal([]byte(t.Value.String()), s); err != nil {
		return nil, &DecisionError{Field: "dynamic_metadata", Msg: "not representable as a protobuf Struct"}
	}
	return s, nil
}
