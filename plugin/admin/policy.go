package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/rego"
)

var errNoPolicy = errors.New(DecisionQuery + " is undefined: no policy defines it")

// decision is data.pat.admin.decision.
type decision struct {
	Allow   bool
	Status  int
	Message string
}

// evaluator evaluates data.pat.admin.decision with the manager's compiler
// and store, so it sees the active bundle's policy and settings. The
// prepared query is rebuilt when the manager's compiler changes (a bundle
// activation replaces it); data changes need no rebuild, as every
// evaluation reads the store.
type evaluator struct {
	m *plugins.Manager

	mu       sync.Mutex
	compiler *ast.Compiler
	pq       rego.PreparedEvalQuery
	approval rego.PreparedEvalQuery // ApprovalQuery
}

func newEvaluator(m *plugins.Manager) *evaluator { return &evaluator{m: m} }

// prepared returns the prepared queries for the manager's compiler: the
// decision and the approval policy.
func (e *evaluator) prepared(ctx context.Context) (rego.PreparedEvalQuery, rego.PreparedEvalQuery, error) {
	c := e.m.GetCompiler()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.compiler != nil && c == e.compiler {
		return e.pq, e.approval, nil
	}
	pq, err := rego.New(rego.Query(DecisionQuery), rego.Compiler(c), rego.Store(e.m.Store)).PrepareForEval(ctx)
	if err != nil {
		return rego.PreparedEvalQuery{}, rego.PreparedEvalQuery{}, fmt.Errorf("preparing %s: %w", DecisionQuery, err)
	}
	approval, err := rego.New(rego.Query(ApprovalQuery), rego.Compiler(c), rego.Store(e.m.Store)).PrepareForEval(ctx)
	if err != nil {
		return rego.PreparedEvalQuery{}, rego.PreparedEvalQuery{}, fmt.Errorf("preparing %s: %w", ApprovalQuery, err)
	}
	e.compiler, e.pq, e.approval = c, pq, approval
	return pq, approval, nil
}

// approvalDisabled reports whether approval of fine-grained tokens is
// effectively disabled in org (ApprovalQuery is "disable"). A policy that
// does not define the query (a bundle older than it) reads as "require":
// tokens without a grant are then neither listed nor revocable, as before.
func (e *evaluator) approvalDisabled(ctx context.Context, org string) (bool, error) {
	_, pq, err := e.prepared(ctx)
	if err != nil {
		return false, err
	}
	rs, err := pq.Eval(ctx, rego.EvalInput(map[string]any{"org": org}))
	if err != nil {
		return false, fmt.Errorf("evaluating %s: %w", ApprovalQuery, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return false, nil
	}
	return rs[0].Expressions[0].Value == "disable", nil
}

func (e *evaluator) decide(ctx context.Context, input map[string]any) (decision, error) {
	pq, _, err := e.prepared(ctx)
	if err != nil {
		return decision{}, err
	}
	rs, err := pq.Eval(ctx, rego.EvalInput(input))
	if err != nil {
		return decision{}, fmt.Errorf("evaluating %s: %w", DecisionQuery, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return decision{}, errNoPolicy
	}
	obj, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return decision{}, fmt.Errorf("%s: want an object, got %T", DecisionQuery, rs[0].Expressions[0].Value)
	}
	var d decision
	if d.Allow, ok = obj["allow"].(bool); !ok {
		return decision{}, fmt.Errorf("%s: allow: want a boolean, got %T", DecisionQuery, obj["allow"])
	}
	if d.Allow {
		return d, nil
	}
	status, err := statusOf(obj["status"])
	if err != nil {
		return decision{}, fmt.Errorf("%s: status: %w", DecisionQuery, err)
	}
	d.Status = status
	if d.Message, ok = obj["message"].(string); !ok {
		return decision{}, fmt.Errorf("%s: message: want a string, got %T", DecisionQuery, obj["message"])
	}
	return d, nil
}

// statusOf reads a denial's status: an HTTP error status.
func statusOf(v any) (int, error) {
	var n int64
	switch x := v.(type) {
	case interface{ Int64() (int64, error) }:
		i, err := x.Int64()
		if err != nil {
			return 0, fmt.Errorf("%v is not an integer", v)
		}
		n = i
	case float64:
		n = int64(x)
	default:
		return 0, fmt.Errorf("want a number, got %T", v)
	}
	if n < 400 || n > 599 || http.StatusText(int(n)) == "" {
		return 0, fmt.Errorf("%d is not an HTTP error status", n)
	}
	return int(n), nil
}
