package issue

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/opa-pat/opa-pat/plugin/permissions"
	patrego "github.com/opa-pat/opa-pat/rego"
)

// gateNeed is one requirement the Envoy gate names: a fine-grained
// permission, on an organization's own resource or a repository, for an
// action ("" when the gate's code, not a literal, decides it), with the
// classic scopes the route names (nil: none, rule 11 decides).
type gateNeed struct {
	where, permission, action, at string
	scopes                        []string
}

// The gate's functions and tables by where their requirements apply.
var gateWhere = map[string]string{
	"_repo_permission": "repo", "_exception": "repo", "repo_permissions": "repo",
	"_commit_sub_permissions": "repo", "_environment_permission": "repo",
	"_org_permission": "org", "_org_exception": "org", "org_permissions": "org",
	"_copilot_seat_read": "org", "_custom_roles": "org",
}

// gateNeeds reads every requirement envoy.rego names: each object with a
// "permission" (its "classic_scopes" a literal or a table of the gate
// indexed by the action) and, in the organization's functions and tables,
// each permission name a table gives.
func gateNeeds(t *testing.T) []gateNeed {
	t.Helper()
	mods, err := patrego.Modules()
	if err != nil {
		t.Fatal(err)
	}
	src, ok := mods["pat/envoy/envoy.rego"]
	if !ok {
		t.Fatalf("no pat/envoy/envoy.rego among %d modules", len(mods))
	}
	mod, err := ast.ParseModuleWithOpts("envoy.rego", src, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]ast.Object{}
	for _, r := range mod.Rules {
		if r.Head.Value == nil || len(r.Head.Args) > 0 {
			continue
		}
		if o, ok := r.Head.Value.Value.(ast.Object); ok {
			tables[r.Head.Name.String()] = o
		}
	}
	var out []gateNeed
	var visit func(x *ast.Term, where, action, at string)
	// scopesOf reads a route's classic scopes for an action: a literal
	// array, or _table[action] (both of the table's actions when the
	// action is the gate's to decide).
	var scopesOf func(x *ast.Term, action, at string) map[string][]string
	scopesOf = func(x *ast.Term, action, at string) map[string][]string {
		switch v := x.Value.(type) {
		case *ast.Array:
			var s []string
			v.Foreach(func(e *ast.Term) { s = append(s, strings.Trim(e.String(), `"`)) })
			return map[string][]string{action: s}
		case ast.Ref:
			name := v[0].String()
			if len(v) == 2 {
				if o, ok := tables[name]; ok {
					res := map[string][]string{}
					o.Foreach(func(k, e *ast.Term) {
						a := strings.Trim(k.String(), `"`)
						if action == "" || action == a {
							res[a] = scopesOf(e, a, at)[a]
						}
					})
					return res
				}
			}
		case ast.Var:
			if v == "_new_repository_scopes" {
				// repo, or public_repo too for a public repository: the
				// stricter.
				return map[string][]string{action: {"repo"}}
			}
		}
		t.Fatalf("%s: classic scopes %v: neither a literal nor a table of the gate indexed by the action", at, x)
		return nil
	}
	visit = func(x *ast.Term, where, action, at string) {
		switch v := x.Value.(type) {
		case ast.Object:
			if p, ok := stringAt(v, "permission"); ok {
				a := action
				if s, ok := stringAt(v, "action"); ok {
					a = s
				}
				w := where
				if r := v.Get(ast.StringTerm("resource")); r != nil {
					if ro, ok := r.Value.(ast.Object); ok && ro.Get(ast.StringTerm("repository")) != nil {
						w = "repo"
					}
				}
				if cs := v.Get(ast.StringTerm("classic_scopes")); cs != nil {
					for a2, s := range scopesOf(cs, a, at) {
						out = append(out, gateNeed{w, p, a2, at, s})
					}
				} else if w != "" {
					out = append(out, gateNeed{w, p, a, at, nil})
				}
				for _, k := range []string{"also", "either"} {
					if sub := v.Get(ast.StringTerm(k)); sub != nil {
						visit(sub, w, a, at)
					}
				}
				return
			}
			v.Foreach(func(k, e *ast.Term) {
				key := strings.Trim(k.String(), `"`)
				a := action
				if key == "read" || key == "write" {
					a = key
				}
				if s, ok := e.Value.(ast.String); ok && where == "org" && permissions.Fine(string(s)) && key != "action" {
					out = append(out, gateNeed{where, string(s), a, at, nil})
					return
				}
				visit(e, where, a, at)
			})
		case *ast.Array:
			v.Foreach(func(e *ast.Term) { visit(e, where, action, at) })
		default:
			ast.WalkTerms(x, func(y *ast.Term) bool {
				if y == x {
					return false
				}
				switch y.Value.(type) {
				case ast.Object, *ast.Array:
					visit(y, where, action, at)
					return true
				}
				return false
			})
		}
	}
	for _, r := range mod.Rules {
		name := r.Head.Name.String()
		where := gateWhere[name]
		for rule := r; rule != nil; rule = rule.Else {
			at := fmt.Sprintf("envoy.rego:%d (%s)", rule.Location.Row, name)
			action := branchAction(rule)
			if rule.Head.Value != nil {
				visit(rule.Head.Value, where, action, at)
			}
			for _, e := range rule.Body {
				ast.WalkTerms(e, func(y *ast.Term) bool {
					switch y.Value.(type) {
					case ast.Object, *ast.Array:
						visit(y, where, action, at)
						return true
					}
					return false
				})
			}
		}
	}
	for _, n := range out {
		if n.where == "" && n.scopes != nil {
			t.Fatalf("%s: the requirement %s with classic scopes %q is in a function this test does not place (gateWhere): say whether it is an organization's or a repository's", n.at, n.permission, n.scopes)
		}
	}
	return out
}

// branchAction is the action a branch of the gate's functions keeps to:
// "write" when its body asks action == "write" or a DELETE, "read" when it
// asks action == "read", else "" (any: the gate's code decides).
func branchAction(rule *ast.Rule) string {
	for _, e := range rule.Body {
		if !e.IsCall() || e.Operator().String() != "equal" {
			continue
		}
		l, r := e.Operand(0), e.Operand(1)
		switch {
		case l.String() == "action" && r.String() == `"write"`, l.String() == "_method" && r.String() == `"DELETE"`:
			return "write"
		case l.String() == "action" && r.String() == `"read"`:
			return "read"
		}
	}
	return ""
}

// stringAt is an object's string at key.
func stringAt(o ast.Object, key string) (string, bool) {
	if x := o.Get(ast.StringTerm(key)); x != nil {
		if s, ok := x.Value.(ast.String); ok {
			return string(s), true
		}
	}
	return "", false
}

// policyValue evaluates a constant of the policy.
func policyValue[T any](t *testing.T, query string) T {
	t.Helper()
	mods, err := patrego.Modules()
	if err != nil {
		t.Fatal(err)
	}
	opts := []func(*rego.Rego){rego.Query(query)}
	for path, src := range mods {
		opts = append(opts, rego.Module(path, src))
	}
	rs, err := rego.New(opts...).Eval(t.Context())
	if err != nil || len(rs) != 1 {
		t.Fatalf("%s: %v %v", query, rs, err)
	}
	b, err := json.Marshal(rs[0].Expressions[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// The creation check (creation.rego, _gate_needs) covers every requirement
// the Envoy gate names: for each, a creator holding every classic scope but
// those the gate asks for it (and those that include them) cannot create a
// fine-grained token with the permission, at read when the gate asks it to
// read and at write (which reaches every request of the permission), while
// a creator with every scope can. The gate's routes written as code are
// copied into creation.rego (_gate_code_routes): this test fails when one is
// added or changed there and not here.
func TestCreationCoversTheGate(t *testing.T) {
	needs := gateNeeds(t)
	if len(needs) < 60 {
		t.Fatalf("read %d requirements from the gate: the walk missed its tables", len(needs))
	}
	orgScopes := policyValue[map[string]map[string][]string](t, "data.pat._classic_org_scopes")
	narrow := policyValue[map[string]map[string][]string](t, "data.pat._narrow_scopes")
	includes := policyValue[map[string][]string](t, "data.pat._scope_includes")
	c, err := NewChecker(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	created := int64(1767225600000000000)
	check := func(scopes []string, selection, permission, level string) Decision {
		expires := created + 90*86400e9
		in := Input{Role: "member",
			Token: InputToken{Kind: "fine_grained", User: "bob", ResourceOwner: "octo-org", RepositorySelection: selection,
				Permissions: map[string]string{permission: level}, CreatedAtNS: created, ExpiresAtNS: &expires},
			Creator: &InputCreator{Kind: "classic", Scopes: scopes, CreatedAtNS: created}}
		d, err := c.Check(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	all := permissions.Scopes()
	checked := 0
	for _, n := range needs {
		if n.scopes == nil && n.where != "org" {
			continue // a repository's default: repo, which a token for all repositories needs
		}
		actions := []string{n.action}
		if n.action == "" {
			actions = []string{"read", "write"}
		}
		for _, action := range actions {
			var wanted []string
			switch {
			case n.scopes != nil:
				for _, s := range n.scopes {
					if n.where == "org" || s != "public_repo" {
						wanted = append(wanted, s)
					}
				}
			case n.permission == "metadata" && action == "read":
				continue // an organization's profile, public on GitHub
			case orgScopes[n.permission][action] != nil:
				wanted = orgScopes[n.permission][action]
			default:
				wanted = append([]string{"repo"}, narrow[n.permission][action]...)
			}
			// Every scope but those that meet the requirement.
			var lacking []string
			for _, s := range all {
				meets := slices.Contains(wanted, s)
				for _, inc := range includes[s] {
					meets = meets || slices.Contains(wanted, inc)
				}
				if !meets {
					lacking = append(lacking, s)
				}
			}
			selection := "public"
			if n.where == "repo" {
				selection = "all"
			}
			// write reaches every request of the permission; read those the
			// gate asks to read, and those whose action the gate's code
			// decides (it may be a read).
			levels := []string{"write"}
			if action == "read" {
				levels = append(levels, "read")
			}
			for _, level := range levels {
				what := fmt.Sprintf("%s: %s %s at %s (the gate asks %q to %s)", n.at, n.permission, n.where, level, wanted, action)
				if d := check(lacking, selection, n.permission, level); d.Allowed {
					t.Errorf("%s: a creator without them may create it", what)
				}
				if d := check(all, selection, n.permission, level); !d.Allowed {
					t.Errorf("%s: a creator with every scope may not create it: %q", what, d.Errors)
				}
				checked++
			}
		}
	}
	// Rule 11: the decision asks for workflow to change workflows.
	var lacking []string
	for _, s := range all {
		if s != "workflow" {
			lacking = append(lacking, s)
		}
	}
	if d := check(lacking, "all", "workflows", "write"); d.Allowed {
		t.Errorf("workflows: a creator without workflow may create it")
	}
	t.Logf("checked %d requirements of the gate against the creation check", checked)
}
