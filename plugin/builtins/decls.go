// Package builtins declares and implements the pat.* built-in functions that
// give the policy what it needs to know about tokens, grants, memberships,
// users and repositories. docs/builtins.md is the reference for their shapes.
package builtins

import (
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"
)

// Names of the built-in functions.
const (
	TokenName      = "pat.token"
	GrantName      = "pat.grant"
	OrgRoleName    = "pat.org_role"
	UserName       = "pat.user"
	RepositoryName = "pat.repository"
	PrefixesName   = "pat.token_prefixes"
)

var anyObject = types.NewObject(nil, types.NewDynamicProperty(types.S, types.A))

// The declarations. Every built-in is nondeterministic: its answer depends on
// the token store or the plugin's configuration, not only on its arguments.
var (
	TokenDecl = &rego.Function{
		Name:             TokenName,
		Description:      "Looks up a raw personal access token: its format, and its metadata when the store knows it.",
		Decl:             types.NewFunction(types.Args(types.Named("token", types.S).Description("the raw token as presented")), types.Named("info", anyObject).Description("well_formed, kind, found and, when found, the token's metadata")),
		Nondeterministic: true,
	}
	GrantDecl = &rego.Function{
		Name:             GrantName,
		Description:      "The current approval grant of a fine-grained token for an organization; undefined when there is none.",
		Decl:             types.NewFunction(types.Args(types.Named("token_id", types.N), types.Named("org", types.S)), types.Named("grant", anyObject).Description("id, state, reason, reviewer, updated_at_ns")),
		Nondeterministic: true,
	}
	OrgRoleDecl = &rego.Function{
		Name:             OrgRoleName,
		Description:      "A user's role in an organization: owner, member or outside_collaborator; undefined when the user has none.",
		Decl:             types.NewFunction(types.Args(types.Named("user", types.S), types.Named("org", types.S)), types.Named("role", types.S)),
		Nondeterministic: true,
	}
	UserDecl = &rego.Function{
		Name:             UserName,
		Description:      "A user's record: login and managed_by (the enterprise of an enterprise managed user, or null); undefined for an unknown user.",
		Decl:             types.NewFunction(types.Args(types.Named("login", types.S)), types.Named("user", anyObject)),
		Nondeterministic: true,
	}
	RepositoryDecl = &rego.Function{
		Name:             RepositoryName,
		Description:      "A repository's record: owner, name and visibility (public, internal or private); undefined for an unknown repository.",
		Decl:             types.NewFunction(types.Args(types.Named("owner", types.S), types.Named("name", types.S)), types.Named("repository", anyObject)),
		Nondeterministic: true,
	}
	PrefixesDecl = &rego.Function{
		Name:             PrefixesName,
		Description:      "The token prefixes this process knows: GitHub's, the plugin's token_prefixes (earlier ones too, after a reconfiguration) and those its store records. The decision-log mask recognises the tokens of prefixes without \"_\" by them.",
		Decl:             types.NewFunction(nil, types.Named("prefixes", types.NewSet(types.S)).Description("a set of prefixes, such as {\"ghp_\", \"github_pat_\", \"acme\"}")),
		Nondeterministic: true,
	}
)
