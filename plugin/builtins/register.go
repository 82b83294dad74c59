package builtins

import (
	"errors"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// errNotReady is returned while no token index is installed; OPA then leaves
// the call undefined and the policy denies.
var errNotReady = errors.New("pat: token store not ready")

func init() {
	rego.RegisterBuiltin1(TokenDecl, func(rego.BuiltinContext, *ast.Term) (*ast.Term, error) { return nil, errNotReady })
	rego.RegisterBuiltin2(GrantDecl, func(rego.BuiltinContext, *ast.Term, *ast.Term) (*ast.Term, error) { return nil, errNotReady })
	rego.RegisterBuiltin2(OrgRoleDecl, func(rego.BuiltinContext, *ast.Term, *ast.Term) (*ast.Term, error) { return nil, errNotReady })
	rego.RegisterBuiltin1(UserDecl, func(rego.BuiltinContext, *ast.Term) (*ast.Term, error) { return nil, errNotReady })
	rego.RegisterBuiltin2(RepositoryDecl, func(rego.BuiltinContext, *ast.Term, *ast.Term) (*ast.Term, error) { return nil, errNotReady })
}
