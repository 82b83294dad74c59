package bundle

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// A bundle that brings its own decision-log mask (package system.log)
// replaces the sidecar's (plugin/mask.go), so a mask that forgets a
// credential would put raw tokens in every decision log of the fleet, with a
// valid signature. checkMask runs the bundle's mask and drop rules on the
// decision-log events a sidecar writes for credentials, applies the mask as
// OPA's decision logger does, and refuses the bundle when a token is left.

// Tokens in the probe events: shaped as GitHub's, never issued; and a
// classic token of a prefix without "_", which only the prefix tells from
// other text: the mask and drop rules run as in a sidecar whose
// token_prefixes name it (pat.token_prefixes answers probePrefixes).
const (
	probeClassic     = "ghp_MaskProbe0Classic0Token0000000000000"
	probeFineGrained = "github_pat_11MASKPROBE0000000000000_MaskProbe0FineGrained0Token00000000000000000000000"
	probePrefix      = "pmask"
	probeCustom      = probePrefix + "MaskProbe0Custom0Prefix0Token0000000"
)

// probePrefixes is what pat.token_prefixes answers while the probes run.
var probePrefixes = `{"ghp_", "github_pat_", "` + probePrefix + `"}`

type maskProbe struct {
	what   string
	token  string
	event  map[string]any
	hidden []string // other forms of the token the event carries
}

func maskProbes() []maskProbe {
	basic := base64.StdEncoding.EncodeToString([]byte("git:" + probeClassic))
	check := func(headers map[string]any, path string, query map[string]any) map[string]any {
		headers[":path"] = path
		return map[string]any{
			"attributes": map[string]any{"request": map[string]any{"http": map[string]any{
				"method": "GET", "host": "git.example.com", "path": path, "headers": headers,
			}}},
			"parsed_path":  []any{"repos", "octo-org", "app", "contents"},
			"parsed_query": query,
		}
	}
	event := func(path string, input map[string]any) map[string]any {
		return map[string]any{
			"decision_id": "00000000-0000-0000-0000-000000000000", "path": path, "input": input,
			"result": map[string]any{"allow": false}, "timestamp": "2026-01-01T00:00:00Z",
		}
	}
	direct := func() map[string]any {
		return event("pat/decision", map[string]any{
			"credential": map[string]any{"type": "pat", "token": probeFineGrained},
			"resource":   map[string]any{"owner": "octo-org", "repository": "app"},
			"action":     "read", "permission": "contents",
		})
	}
	// pat.token is non-deterministic: with decision_logs.nd_builtin_cache on,
	// OPA logs its calls, keyed by their arguments, the raw token.
	cached := direct()
	cached["nd_builtin_cache"] = map[string]any{"pat.token": map[string]any{
		`["` + probeFineGrained + `"]`: map[string]any{"found": true, "id": 7},
	}}
	return []maskProbe{
		{what: "a direct decision (input.credential.token)", token: probeFineGrained, event: direct()},
		{what: "an ext_authz Check with a Bearer token", token: probeFineGrained, event: event("pat/envoy/response", check(
			map[string]any{"authorization": "Bearer " + probeFineGrained}, "/repos/octo-org/app/contents", map[string]any{}))},
		{what: "an ext_authz Check with the token scheme", token: probeClassic, event: event("pat/envoy/response", check(
			map[string]any{"authorization": "token " + probeClassic}, "/repos/octo-org/app/contents", map[string]any{}))},
		{what: "an ext_authz Check with Basic credentials", token: probeClassic, hidden: []string{basic}, event: event("pat/envoy/response", check(
			map[string]any{"authorization": "Basic " + basic}, "/repos/octo-org/app/contents", map[string]any{}))},
		{what: "an ext_authz Check with the token in the query (access_token)", token: probeClassic, event: event("pat/envoy/response", check(
			map[string]any{}, "/repos/octo-org/app/contents?access_token="+probeClassic,
			map[string]any{"access_token": []any{probeClassic}}))},
		{what: "an ad-hoc query (/v1/query) naming a token", token: probeClassic, event: map[string]any{
			"decision_id": "00000000-0000-0000-0000-000000000000", "path": "",
			"query": `pat.token("` + probeClassic + `")`, "result": []any{}, "timestamp": "2026-01-01T00:00:00Z",
		}},
		{what: "a direct decision with decision_logs.nd_builtin_cache on (pat.token's call)", token: probeFineGrained, event: cached},
		{what: `an ext_authz Check with another token, of a prefix without "_", in a header of its own`, token: probeCustom, event: event("pat/envoy/response", check(
			map[string]any{"authorization": "Bearer " + probeClassic, "x-note": probeCustom}, "/repos/octo-org/app/contents", map[string]any{}))},
		{what: `an ad-hoc query (/v1/query) naming a token of a prefix without "_"`, token: probeCustom, event: map[string]any{
			"decision_id": "00000000-0000-0000-0000-000000000000", "path": "",
			"query": `pat.token("` + probeCustom + `")`, "result": []any{}, "timestamp": "2026-01-01T00:00:00Z",
		}},
		{what: "an ad-hoc query (/v1/query) whose result holds a token", token: probeClassic, event: map[string]any{
			"decision_id": "00000000-0000-0000-0000-000000000000", "path": "",
			"query": "assign(x, input.a)", "input": map[string]any{"a": probeClassic},
			"result": []any{map[string]any{"x": probeClassic}}, "timestamp": "2026-01-01T00:00:00Z",
		}},
	}
}

// definesMask reports whether one of the modules is of package system.log
// or below.
func definesMask(parsed map[string]*ast.Module) bool {
	for _, mod := range parsed {
		if p := packagePath(mod); p == "system/log" || strings.HasPrefix(p, "system/log/") {
			return true
		}
	}
	return false
}

// checkMask refuses a compiled policy whose mask leaves a probe's token in
// its decision-log event. The pat.* built-ins must be registered (opa-pat
// registers them): the probes replace pat.token_prefixes' answer, which OPA
// allows only for a built-in it has.
func checkMask(c *ast.Compiler, data map[string]any) error {
	ctx := context.Background()
	store := inmem.NewFromObject(data)
	prepare := func(q string) (rego.PreparedEvalQuery, error) {
		q += " with pat.token_prefixes as " + probePrefixes
		return rego.New(rego.Compiler(c), rego.Store(store), rego.Query(q)).PrepareForEval(ctx)
	}
	drop, err := prepare("data.system.log.drop")
	if err != nil {
		return fmt.Errorf("policy: the decision-log drop rule: %s", oneLine(err))
	}
	mask, err := prepare("data.system.log.mask")
	if err != nil {
		return fmt.Errorf("policy: the decision-log mask: %s", oneLine(err))
	}
	for _, p := range maskProbes() {
		rs, err := drop.Eval(ctx, rego.EvalInput(p.event))
		if err != nil {
			return fmt.Errorf("policy: the decision-log drop rule fails on %s: %s", p.what, oneLine(err))
		}
		if len(rs) == 1 && rs[0].Expressions[0].Value == true {
			continue
		}
		rs, err = mask.Eval(ctx, rego.EvalInput(p.event))
		if err != nil {
			return fmt.Errorf("policy: the decision-log mask fails on %s: %s", p.what, oneLine(err))
		}
		logged := map[string]any{}
		for _, k := range []string{"input", "result", "nd_builtin_cache", "query"} {
			if v, ok := p.event[k]; ok {
				logged[k] = v
			}
		}
		if len(rs) == 1 {
			if err := applyMask(logged, rs[0].Expressions[0].Value); err != nil {
				return fmt.Errorf("policy: the decision-log mask fails on %s: %v", p.what, err)
			}
		}
		for _, secret := range append([]string{p.token}, p.hidden...) {
			switch where := find(logged, "", secret); where {
			case "":
			case "/query":
				return fmt.Errorf("policy: the bundle's decision-log mask (package system.log) leaves the raw token of %s in the query's text, "+
					"which no mask reaches: add a drop rule (data.system.log.drop) for such events, "+
					"or leave system/log out of the bundle to keep the sidecar's own mask", p.what)
			default:
				return fmt.Errorf("policy: the bundle's decision-log mask (package system.log) leaves the raw token of %s at %s; "+
					"erase it there, or leave system/log out of the bundle to keep the sidecar's own mask", p.what, where)
			}
		}
	}
	return nil
}

// applyMask applies mask rules (JSON pointers to remove, or {"op", "path",
// "value"} objects) to an event's input, result and query as OPA's decision
// logger does: a path's segments are compared with keys escaped as URL path
// segments, a removal of a path that is not there does nothing, an upsert
// creates the objects on its way, and a rule OPA would refuse is an error.
func applyMask(logged map[string]any, rules any) error {
	list, ok := rules.([]any)
	if !ok { // OPA's decision logger refuses it too, and logs nothing
		return fmt.Errorf("the mask is %T, not a set", rules)
	}
	for _, r := range list {
		op, path, value := "remove", "", any(nil)
		switch r := r.(type) {
		case string:
			path = r
		case map[string]any:
			// OPA's decision logger refuses an object without op as it
			// refuses an unknown one, and then logs nothing at all.
			s, _ := r["op"].(string)
			if s != "remove" && s != "upsert" {
				return fmt.Errorf("mask rule %v: op must be \"remove\" or \"upsert\"", r)
			}
			op = s
			path, _ = r["path"].(string)
			value = r["value"]
		default:
			return fmt.Errorf("mask rule %v is neither a path nor an object", r)
		}
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("mask rule %q: a path starts with /", path)
		}
		parts := strings.Split(path[1:], "/")
		for i, part := range parts {
			if _, err := url.PathUnescape(part); err != nil {
				return fmt.Errorf("mask rule %q: %v", path, err)
			}
			parts[i] = url.PathEscape(part)
		}
		switch parts[0] {
		case "input", "result", "nd_builtin_cache":
		default:
			return fmt.Errorf("mask rule %q: OPA masks only /input, /result and /nd_builtin_cache", path)
		}
		root, ok := logged[parts[0]]
		if !ok {
			continue
		}
		if _, adHoc := logged["query"]; adHoc && parts[0] == "result" && len(parts) > 1 {
			// OPA logs an ad-hoc query's result as a typed list
			// (AdhocQueryResultSetV1) that its mask cannot reach into: a
			// pointer inside is skipped, and only /result as a whole works.
			continue
		}
		switch {
		case len(parts) == 1 && op == "remove":
			delete(logged, parts[0])
		case len(parts) == 1:
			logged[parts[0]] = value
		case op == "remove":
			logged[parts[0]] = remove(root, parts[1:])
		default:
			upsert(root, parts[1:], value)
		}
	}
	return nil
}

// remove returns node without the value at path (unchanged when there is
// none).
func remove(node any, path []string) any {
	key := path[0]
	switch v := node.(type) {
	case map[string]any:
		child, ok := v[key]
		if !ok {
			return node
		}
		if len(path) == 1 {
			delete(v, key)
		} else {
			v[key] = remove(child, path[1:])
		}
	case []any:
		i, err := strconv.Atoi(key)
		if err != nil || i < 0 || i >= len(v) {
			return node
		}
		if len(path) == 1 {
			return append(v[:i:i], v[i+1:]...)
		}
		v[i] = remove(v[i], path[1:])
	}
	return node
}

// upsert sets the value at path, creating objects on the way; a path through
// anything else than objects, or past an array's end, changes nothing.
func upsert(node any, path []string, value any) {
	for i, key := range path {
		last := i == len(path)-1
		switch v := node.(type) {
		case map[string]any:
			if last {
				v[key] = value
				return
			}
			child, ok := v[key]
			if !ok {
				child = map[string]any{}
				v[key] = child
			}
			node = child
		case []any:
			j, err := strconv.Atoi(key)
			if err != nil || j < 0 || j >= len(v) {
				return
			}
			if last {
				v[j] = value
				return
			}
			node = v[j]
		default:
			return
		}
	}
}

// find returns the JSON pointer of the first string under node (in key
// order) that holds secret, or "".
func find(node any, at, secret string) string {
	switch v := node.(type) {
	case string:
		if strings.Contains(v, secret) {
			if at == "" {
				return "/"
			}
			return at
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			if strings.Contains(k, secret) {
				return at + " (in a key)"
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if w := find(v[k], at+"/"+k, secret); w != "" {
				return w
			}
		}
	case []any:
		for i, e := range v {
			if w := find(e, at+"/"+strconv.Itoa(i), secret); w != "" {
				return w
			}
		}
	}
	return ""
}
