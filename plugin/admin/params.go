package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opa-pat/opa-pat/plugin/jsonkey"
	"github.com/opa-pat/opa-pat/plugin/permissions"
	"github.com/opa-pat/opa-pat/plugin/store"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// maxBody bounds a request body.
const maxBody = 1 << 20

// page is the page a list asks for.
type page struct {
	Page, PerPage int
}

// parsePage reads per_page (default 30, at most 100: larger values are
// capped, as GitHub does) and page (from 1).
func parsePage(q url.Values) (page, []fieldError) {
	p := page{Page: 1, PerPage: defaultPerPage}
	var errs []fieldError
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || !digits(v) {
			errs = append(errs, fieldError{Field: "per_page", Message: fmt.Sprintf("per_page: %s is not a positive integer", token.Quote(v))})
		} else {
			p.PerPage = min(n, maxPerPage)
		}
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || !digits(v) {
			errs = append(errs, fieldError{Field: "page", Message: fmt.Sprintf("page: %s is not a positive integer", token.Quote(v))})
		} else {
			// Far past any list (an empty page, as GitHub answers), and
			// small enough that (page-1)*per_page cannot overflow.
			p.Page = min(n, maxPage)
		}
	}
	return p, errs
}

// setLink sets GitHub's Link header for a page of total items: prev, next,
// last and first, each the request's URL with its page replaced. The links
// carry page, per_page and the parameters named in params (the endpoint's
// filters) as the endpoint read them, and no other: a parameter the
// endpoint does not read may be anything, a token sent as ?access_token=
// too, and a Link header is logged by proxies and kept by clients. So a
// parameter the endpoint reads once (q.Get) keeps its first value only
// (?state=all&state=<token> lists as state=all), and a value that looks
// like a token, which the endpoints refuse before listing, is dropped here
// too.
func (s *Server) setLink(w http.ResponseWriter, r *http.Request, p page, total int, params ...string) {
	last := max(1, (total+p.PerPage-1)/p.PerPage)
	base := s.base(r)
	given := r.URL.Query()
	kept := url.Values{}
	for _, name := range params {
		v := given[name]
		if len(v) > 1 && !repeatedParams[name] {
			v = v[:1]
		}
		if slices.ContainsFunc(v, s.looksLikeToken) {
			continue
		}
		if len(v) > 0 {
			kept[name] = v
		}
	}
	link := func(n int, rel string) string {
		q := maps.Clone(kept)
		q.Set("page", strconv.Itoa(n))
		q.Set("per_page", strconv.Itoa(p.PerPage))
		return fmt.Sprintf(`<%s%s?%s>; rel="%s"`, base, r.URL.Path, q.Encode(), rel)
	}
	var links []string
	if p.Page > 1 {
		links = append(links, link(min(p.Page-1, last), "prev"))
	}
	if p.Page < last {
		links = append(links, link(p.Page+1, "next"), link(last, "last"))
	}
	if p.Page > 1 {
		links = append(links, link(1, "first"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
}

// repeatedParams are the parameters read with every value (values): the
// links carry each of them.
var repeatedParams = map[string]bool{"owner": true, "owner[]": true, "token_id": true, "token_id[]": true, "request_id": true, "request_id[]": true}

// looksLikeToken reports whether v holds a token, also lower-cased (its
// checksum lost) or cut short after GitHub's prefixes, the deployment's or
// any this process noted (token.Hidden): such a value is never quoted back
// nor put in a link.
func (s *Server) looksLikeToken(v string) bool {
	return token.Hidden(v, s.deps.Prefixes)
}

// tokenParam is the 422 entry for a query parameter that holds a token:
// the parameter is named, the value neither quoted nor described, as for a
// body field the store would keep (store.CheckPlain).
func tokenParam(name string) fieldError {
	return fieldError{Field: name, Message: name + ": looks like a personal access token; send a token only in the Authorization header, never in a URL"}
}

// values returns a repeated parameter given as name[] or name.
func values(q url.Values, name string) []string {
	var out []string
	for _, key := range []string{name + "[]", name} {
		for _, v := range q[key] {
			for part := range strings.SplitSeq(v, ",") {
				if part = strings.TrimSpace(part); part != "" {
					out = append(out, part)
				}
			}
		}
	}
	return out
}

// queryIDs reads a list of ids given as name[] or name, repeated or
// comma-separated (values): at most maxIDs of them, as GitHub allows, each
// plain decimal digits. A longer list is refused before its ids are read:
// each would come back in the Link header, and each bad one in the answer.
func queryIDs(q url.Values, name, what string) ([]int64, []fieldError) {
	vs := values(q, name)
	if len(vs) > maxIDs {
		return nil, []fieldError{{Field: name, Message: fmt.Sprintf("%s: at most %d %s ids, got %d", name, maxIDs, what, len(vs))}}
	}
	var ids []int64
	var errs []fieldError
	for _, v := range vs {
		id, ok := parseID(v)
		if !ok {
			errs = append(errs, fieldError{Field: name, Message: fmt.Sprintf("%s: %s is not a %s id", name, token.Quote(v), what)})
			continue
		}
		ids = append(ids, id)
	}
	return ids, errs
}

// grantListParams are the query parameters of the two organization lists
// besides page and per_page: parseGrantFilter's and state.
var grantListParams = []string{"owner", "owner[]", "repository", "permission", "token_id", "token_id[]", "sort", "direction",
	"last_used_before", "last_used_after", "state"}

// auditParams are the audit log's filters.
var auditParams = []string{"actor", "action", "token_id", "token_id[]", "request_id", "request_id[]"}

// parseGrantFilter reads GitHub's filters of the two organization lists.
// A login, repository or permission that looks like a token is refused:
// none can be one, and the value would otherwise come back in the Link
// header.
func (s *Server) parseGrantFilter(q url.Values, org string) (store.OrgGrantFilter, page, []fieldError) {
	f := store.OrgGrantFilter{Org: org, Repository: q.Get("repository"), Permission: q.Get("permission"), LiveTokens: true}
	p, errs := parsePage(q)
	f.Page, f.PerPage = p.Page, p.PerPage
	f.Owners = values(q, "owner")
	if slices.ContainsFunc(f.Owners, s.looksLikeToken) {
		errs = append(errs, tokenParam("owner"))
	}
	if len(f.Owners) > maxOwners {
		errs = append(errs, fieldError{Field: "owner", Message: fmt.Sprintf("owner: at most %d owners, got %d", maxOwners, len(f.Owners))})
	}
	for _, name := range []string{"repository", "permission"} {
		if s.looksLikeToken(q.Get(name)) {
			errs = append(errs, tokenParam(name))
		}
	}
	// A value that names no repository or permission would list nothing,
	// as if none matched: a typo would read as an answer.
	if v := f.Repository; v != "" && !s.looksLikeToken(v) && !repositoryName(v) {
		errs = append(errs, fieldError{Field: "repository", Message: fmt.Sprintf("repository: %s is not a repository name: ASCII letters, digits, '-', '_' and '.' only, without the owner", token.Quote(v))})
	}
	// The reason is token creation's (permissions.Unknown): a short name
	// earlier versions took comes with GitHub's name, a GitHub App
	// permission with why no token holds it.
	if v := f.Permission; v != "" && !s.looksLikeToken(v) && !permissions.Fine(v) {
		errs = append(errs, fieldError{Field: "permission", Message: fmt.Sprintf("permission: %s: %s", token.Quote(v), permissions.Unknown(v))})
	}
	ids, idErrs := queryIDs(q, "token_id", "token")
	f.TokenIDs, errs = ids, append(errs, idErrs...)
	if v := q.Get("sort"); v != "" && v != "created_at" {
		errs = append(errs, fieldError{Field: "sort", Message: fmt.Sprintf(`sort: unknown value %s, want "created_at"`, token.Quote(v))})
	}
	switch v := q.Get("direction"); v {
	case "", "desc":
	case "asc":
		f.Ascending = true
	default:
		errs = append(errs, fieldError{Field: "direction", Message: fmt.Sprintf(`direction: unknown value %s, want "asc" or "desc"`, token.Quote(v))})
	}
	for _, b := range []struct {
		name string
		dst  *time.Time
	}{{"last_used_before", &f.LastUsedBefore}, {"last_used_after", &f.LastUsedAfter}} {
		v := q.Get(b.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			errs = append(errs, fieldError{Field: b.name, Message: fmt.Sprintf("%s: %s is not an ISO 8601 time (YYYY-MM-DDTHH:MM:SSZ)", b.name, token.Quote(v))})
			continue
		}
		*b.dst = t
	}
	return f, p, errs
}

// repositoryName reports whether v is a repository's name as GitHub
// allows it (and the store keeps it): ASCII letters, digits, '-', '_' and
// '.', at most 100, not "." or "..".
func repositoryName(v string) bool {
	if v == "." || v == ".." || len(v) > 100 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return v != ""
}

// pathID reads an id in the path: plain decimal digits, not 0. Anything
// else ("+6", "6 ", "0x6") names no id and is not found, as an unknown id
// is.
func pathID(r *http.Request, name string) (int64, bool) {
	return parseID(r.PathValue(name))
}

// parseID reads an id, in a path or a query: plain decimal digits (no sign,
// no space), a positive int64. strconv alone would take "+6" for 6.
func parseID(s string) (int64, bool) {
	if !digits(s) {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// digits reports whether s is one or more ASCII decimal digits.
func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// decodeBody decodes a JSON body into dst; a body that is not JSON is a
// 400, as on GitHub, and a value of the wrong type a 422 naming the field
// of resource. A body that is not UTF-8, or that gives a key twice in one
// object, or that escapes half a UTF-16 surrogate pair alone ("\ud800"), is
// not JSON that every reader reads alike: Go's decoder would keep U+FFFD
// for the bytes it cannot read and for the escape, and the last of two
// values ({"action": "deny", "action": "approve"} approves), other readers
// the first or an error. So is a body with two keys of one object that
// differ only in case, or a key of the endpoint in another case: Go's
// decoder binds keys to fields without regard to case ({"action": "deny",
// "Action": "approve"} approved), GitHub and other readers exactly. Each
// is a 400 naming what is wrong, as the Envoy gate reads a body with a key
// twice as none (jsonkey); nothing of any is applied.
func decodeBody(r *http.Request, dst any, resource, doc string) *apiError {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return newError(http.StatusBadRequest, "Problems parsing JSON: "+err.Error(), doc)
	}
	if len(b) > maxBody {
		return newError(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxBody), doc)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("{}")
	}
	if !utf8.Valid(b) {
		return newError(http.StatusBadRequest, "Problems parsing JSON: the body is not valid UTF-8", doc)
	}
	// One value and nothing after it (a second object, a cut-off one): a
	// body a reader could read otherwise is not applied, as on GitHub.
	if !json.Valid(b) {
		return newError(http.StatusBadRequest, "Problems parsing JSON", doc)
	}
	// An escape of half a UTF-16 surrogate pair, alone ("\ud800"), is
	// U+FFFD to Go's reader and something else to others, as bytes that are
	// not UTF-8 are: a name or a reason would not be stored as sent.
	if at := jsonkey.LoneSurrogate(b); at >= 0 {
		return newError(http.StatusBadRequest, "Problems parsing JSON: the body holds a lone UTF-16 surrogate, "+string(b[at:at+6]), doc)
	}
	// A key twice, and (Go's decoder binds a key to a field without regard
	// to case, the last of several: {"action": "deny", "Action": "approve"}
	// approves; GitHub and most readers compare keys exactly) two keys of
	// one object that differ only in case, or a key that is one of the
	// endpoint's in another case, are refused, so that every reader reads
	// the body alike. One pass finds both kinds of pair: keys equal once
	// decoded are equal once folded.
	if first, second, found := jsonkey.FoldedTwice(bytes.NewReader(b)); found {
		if first == second {
			return newError(http.StatusBadRequest, fmt.Sprintf("Problems parsing JSON: the key %s appears twice", token.Quote(first)), doc)
		}
		return newError(http.StatusBadRequest, fmt.Sprintf("Problems parsing JSON: the keys %s and %s differ only in case; give each key once, as documented", token.Quote(first), token.Quote(second)), doc)
	}
	if key, want, ok := keyInAnotherCase(b, dst); ok {
		return newError(http.StatusBadRequest, fmt.Sprintf("Problems parsing JSON: the key %s is %s in another case; keys are matched exactly, as on GitHub: give %[2]s", token.Quote(key), strconv.Quote(want)), doc)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return invalid(doc, resource, fieldError{Field: te.Field, Message: fmt.Sprintf("%s: want %s, got a JSON %s", te.Field, jsonTypeName(te.Type.String()), te.Value)})
		}
		return newError(http.StatusBadRequest, "Problems parsing JSON", doc)
	}
	return nil
}

// keyInAnotherCase returns a key of the JSON object b that is not one of
// the keys of the struct dst points to but one of them in another case
// ("Action" for "action"), with that key: Go's decoder would bind it. The
// body's keys are read only when dst is a struct and b an object.
func keyInAnotherCase(b []byte, dst any) (key, want string, ok bool) {
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return "", "", false
	}
	t = t.Elem()
	fields := make(map[string]string, t.NumField()) // folded name -> name
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case !f.IsExported() || name == "-":
			continue
		case name == "":
			name = f.Name
		}
		fields[jsonkey.Fold(name)] = name
	}
	var body map[string]json.RawMessage
	if json.Unmarshal(b, &body) != nil {
		return "", "", false
	}
	for _, k := range slices.Sorted(maps.Keys(body)) {
		if name, found := fields[jsonkey.Fold(k)]; found && name != k {
			return k, name, true
		}
	}
	return "", "", false
}

// jsonTypeName names, in JSON's terms, the Go type a body field decodes
// into, for a 422 of a value of the wrong type.
func jsonTypeName(goType string) string {
	switch {
	case goType == "admin.idList":
		return "an array of integers"
	case goType == "admin.jsonList":
		return "an array of strings"
	case strings.HasPrefix(goType, "map["):
		return "an object"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.Contains(goType, "int"):
		return "an integer"
	case goType == "string", goType == "*string":
		return "a string"
	case goType == "bool", goType == "*bool":
		return "a boolean"
	}
	return goType
}

// idList is a body's list of ids, read element by element so that a 422
// names the element at fault and what it holds: [null] would decode as
// [0] into []int64.
type idList []json.RawMessage

// jsonList is a body's list of strings, read element by element for the
// same reason: [null] would decode as [""].
type jsonList []json.RawMessage

// jsonValue describes a JSON value for a 422: null, true, a number as
// written (when short), a string quoted (token.Quote: described when it
// looks like a token), else its kind.
func jsonValue(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case 'n', 't', 'f':
		return string(raw)
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return "the string " + token.Quote(s)
		}
		return "a JSON string"
	case '{':
		return "a JSON object"
	case '[':
		return "a JSON array"
	}
	if len(raw) > 32 {
		return fmt.Sprintf("a JSON number of %d characters", len(raw))
	}
	return string(raw)
}

// checkIDs checks a bulk list of ids: 1 to 100, each a positive integer
// given once.
func checkIDs(field string, list *idList) ([]int64, []fieldError) {
	switch {
	case list == nil || len(*list) == 0:
		return nil, []fieldError{{Field: field, Code: "missing_field", Message: fmt.Sprintf("%s: give 1 to %d ids", field, store.MaxReviewIDs)}}
	case len(*list) > store.MaxReviewIDs:
		return nil, []fieldError{{Field: field, Message: fmt.Sprintf("%s: give 1 to %d ids, got %d", field, store.MaxReviewIDs, len(*list))}}
	}
	ids := make([]int64, 0, len(*list))
	seen := make(map[int64]bool, len(*list))
	for i, raw := range *list {
		raw = bytes.TrimSpace(raw)
		id, ok := parseID(string(raw))
		if !ok {
			return nil, []fieldError{{Field: field, Message: fmt.Sprintf("%s[%d]: want a positive integer id, got %s", field, i, jsonValue(raw))}}
		}
		if seen[id] {
			return nil, []fieldError{{Field: field, Message: fmt.Sprintf("%s: %d is given twice", field, id)}}
		}
		seen[id] = true
		ids = append(ids, id)
	}
	return ids, nil
}

// texts reads a body's list of strings; an element of another type,
// null too, is a 422 naming it.
func (l jsonList) texts(field string) ([]string, []fieldError) {
	if l == nil {
		return nil, nil
	}
	out := make([]string, 0, len(l))
	for i, raw := range l {
		var s string
		if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return nil, []fieldError{{Field: fmt.Sprintf("%s[%d]", field, i), Message: fmt.Sprintf("%s[%d]: want a string, got %s", field, i, jsonValue(raw))}}
		}
		out = append(out, s)
	}
	return out, nil
}

// checkReason checks a review's reason: at most 1024 characters, without
// NUL (which PostgreSQL cannot store).
func checkReason(reason *string) []fieldError {
	if reason == nil {
		return nil
	}
	if n := utf8.RuneCountInString(*reason); n > store.MaxReasonChars {
		return []fieldError{{Field: "reason", Message: fmt.Sprintf("reason: at most %d characters, got %d", store.MaxReasonChars, n)}}
	}
	if err := store.CheckText("reason", *reason); err != nil {
		return []fieldError{{Field: "reason", Message: err.Error()}}
	}
	return nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
