// Package irvm evaluates OPA's intermediate representation (the plans that
// OPA's planner makes of a compiled policy, the same plans its Wasm compiler
// starts from) directly in Go, as a target of OPA's rego API.
//
// OPA's own evaluator (topdown) interprets the Rego AST: it unifies terms,
// keeps bindings and a virtual-document cache, and allocates for each
// expression. A plan has resolved all of that at compile time into a small
// imperative program over locals, so running it costs a fraction of that:
// for opa-pat's decision, a fifth to a tenth (docs/PERFORMANCE.md). The policy,
// the compiler, the built-in functions and the store stay OPA's; only the
// evaluation loop is this package's.
//
// Use it through rego.Target(irvm.Name), preparing with
// irvm.WithStore(ctx, store), or make it the evaluator of every query that
// names no target with SetDefault (the pat plugin does, with evaluator:
// irvm). Traces and explanations need topdown (ErrTracing); partial
// evaluation is topdown's either way. docs/evaluator.md has the details.
package irvm

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// program is a plan compiled for this package's loop: every operand is
// resolved to a local slot or a constant term, every call to a function
// index or a built-in implementation.
type program struct {
	funcs   []*function
	plan    *function // the query plan, run as a function without parameters
	byPath  map[string]int
	maxSlot int // the largest frame size of any function
}

type function struct {
	name    string
	params  []int
	ret     int
	blocks  [][]instr
	frame   int  // number of local slots
	memoize bool // two parameters (input, data): cached per evaluation
}

type opKind uint8

const (
	opLocal opKind = iota
	opConst
)

// operand is a local slot or a constant term.
type operand struct {
	kind  opKind
	local int
	term  *ast.Term
}

type code uint8

const (
	cReturnLocal code = iota
	cCall
	cCallBuiltin
	cCallDynamic
	cBlock
	cBreak
	cDot
	cLen
	cScan
	cNot
	cAssignInt
	cAssignVar
	cAssignVarOnce
	cResetLocal
	cMakeNull
	cMakeNumber
	cMakeArray
	cMakeObject
	cMakeSet
	cEqual
	cNotEqual
	cIsArray
	cIsObject
	cIsSet
	cIsDefined
	cIsUndefined
	cArrayAppend
	cObjectInsert
	cObjectInsertOnce
	cObjectMerge
	cSetAdd
	cWith
	cNop
	cResultSetAdd
	cFail // a statement that is always undefined (e.g. a dot on a constant)
	// Fused statements (fold.go): a Make* and the inserts that follow it.
	cBuildArray
	cBuildSet
	cBuildObject
)

// instr is one statement. Which fields are used depends on op.
type instr struct {
	op      code
	a, b, c operand // sources (a, b) and key/value
	target  int     // target local
	n       int     // break index, function index, capacity
	args    []operand
	path    []operand // dynamic call path
	pathStr []string  // with path
	blocks  [][]instr // nested blocks (block, scan, not, with)
	builtin *builtin
	loc     *ir.Location
}

type builtin struct {
	name  string
	decl  *ast.Builtin
	fn    topdown.BuiltinFunc
	arith byte // '+', '-' or '*' for plus, minus and mul: integers have a fast path
	// relation: a built-in with many outputs (walk). The plan expects the
	// call to return all of them as one array, which it then scans.
	relation bool
}

var errUnsupported = errors.New("irvm: unsupported plan")

// compile turns a planned policy into a program. extra holds the built-ins
// given to the rego object (rego.FunctionN); the others come from OPA's
// registry, which includes opa-pat's pat.* functions.
func compile(p *ir.Policy, extra map[string]*topdown.Builtin) (*program, error) {
	if p == nil || p.Plans == nil || len(p.Plans.Plans) != 1 {
		return nil, fmt.Errorf("%w: expected one plan", errUnsupported)
	}
	c := &compiler{
		policy:  p,
		prog:    &program{byPath: map[string]int{}},
		funcIdx: map[string]int{},
		extra:   extra,
		strings: make([]*ast.Term, 0),
	}
	if p.Static != nil {
		for _, s := range p.Static.Strings {
			c.strings = append(c.strings, ast.StringTerm(s.Value))
		}
	}
	if p.Funcs != nil {
		for i, f := range p.Funcs.Funcs {
			c.funcIdx[f.Name] = i
			c.prog.funcs = append(c.prog.funcs, &function{name: f.Name})
			if f.Path != nil {
				c.prog.byPath[pathKey(f.Path)] = i
			}
		}
		for i, f := range p.Funcs.Funcs {
			if err := c.function(c.prog.funcs[i], f.Params, f.Return, f.Blocks); err != nil {
				return nil, fmt.Errorf("function %s: %w", f.Name, err)
			}
		}
	}
	plan := &function{name: p.Plans.Plans[0].Name}
	if err := c.function(plan, nil, -1, p.Plans.Plans[0].Blocks); err != nil {
		return nil, fmt.Errorf("plan %s: %w", plan.name, err)
	}
	// Input and data are locals 0 and 1 of a plan.
	if plan.frame < 2 {
		plan.frame = 2
	}
	c.prog.plan = plan
	all := append(slices.Clone(c.prog.funcs), plan)
	foldAll(all)
	for _, f := range all {
		for i, b := range f.blocks {
			f.blocks[i] = fuse(b)
		}
	}
	for _, f := range c.prog.funcs {
		c.prog.maxSlot = max(c.prog.maxSlot, f.frame)
	}
	c.prog.maxSlot = max(c.prog.maxSlot, plan.frame)
	return c.prog, nil
}

func pathKey(path []string) string {
	n := 0
	for _, p := range path {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	for _, p := range path {
		b = append(b, p...)
		b = append(b, 0)
	}
	return string(b)
}

type compiler struct {
	policy  *ir.Policy
	prog    *program
	funcIdx map[string]int
	extra   map[string]*topdown.Builtin
	strings []*ast.Term
	frame   int // largest local seen in the function being compiled
}

func (c *compiler) function(f *function, params []ir.Local, ret ir.Local, blocks []*ir.Block) error {
	c.frame = 0
	for _, p := range params {
		f.params = append(f.params, c.slot(p))
	}
	f.ret = -1
	if ret >= 0 && params != nil {
		f.ret = c.slot(ret)
	}
	f.memoize = len(params) == 2
	for _, b := range blocks {
		ins, err := c.block(b)
		if err != nil {
			return err
		}
		f.blocks = append(f.blocks, ins)
	}
	f.frame = c.frame
	return nil
}

func (c *compiler) slot(l ir.Local) int {
	i := int(l)
	if i+1 > c.frame {
		c.frame = i + 1
	}
	return i
}

func (c *compiler) operand(o ir.Operand) (operand, error) {
	switch v := o.Value.(type) {
	case ir.Local:
		return operand{kind: opLocal, local: c.slot(v)}, nil
	case ir.StringIndex:
		if int(v) < 0 || int(v) >= len(c.strings) {
			return operand{}, fmt.Errorf("%w: string index %d", errUnsupported, v)
		}
		return operand{kind: opConst, term: c.strings[v]}, nil
	case ir.Bool:
		return operand{kind: opConst, term: ast.BooleanTerm(bool(v))}, nil
	default:
		return operand{}, fmt.Errorf("%w: operand %T", errUnsupported, o.Value)
	}
}

func (c *compiler) operands(os []ir.Operand) ([]operand, error) {
	out := make([]operand, len(os))
	for i, o := range os {
		var err error
		if out[i], err = c.operand(o); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *compiler) block(b *ir.Block) ([]instr, error) {
	out := make([]instr, 0, len(b.Stmts))
	for _, s := range b.Stmts {
		in, err := c.stmt(s)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

func (c *compiler) blocks(bs []*ir.Block) ([][]instr, error) {
	out := make([][]instr, len(bs))
	for i, b := range bs {
		var err error
		if out[i], err = c.block(b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// stmt compiles one statement.
func (c *compiler) stmt(s ir.Stmt) (instr, error) {
	var (
		in  = instr{loc: s.GetLocation()}
		err error
	)
	// each case sets in's fields; err collects operand errors.
	op := func(o ir.Operand) operand {
		v, e := c.operand(o)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	switch s := s.(type) {
	case *ir.ReturnLocalStmt:
		in.op, in.a = cReturnLocal, operand{local: c.slot(s.Source)}
	case *ir.CallStmt:
		in.target = c.slot(s.Result)
		in.args, err = c.operands(s.Args)
		if i, ok := c.funcIdx[s.Func]; ok {
			in.op, in.n = cCall, i
		} else {
			in.op = cCallBuiltin
			in.builtin, err = c.builtin(s.Func)
		}
	case *ir.CallDynamicStmt:
		in.op, in.target = cCallDynamic, c.slot(s.Result)
		for _, a := range s.Args {
			in.args = append(in.args, operand{kind: opLocal, local: c.slot(a)})
		}
		in.path, err = c.operands(s.Path)
	case *ir.BlockStmt:
		in.op = cBlock
		in.blocks, err = c.blocks(s.Blocks)
	case *ir.BreakStmt:
		in.op, in.n = cBreak, int(s.Index)
	case *ir.DotStmt:
		in.op, in.a, in.b, in.target = cDot, op(s.Source), op(s.Key), c.slot(s.Target)
		if in.a.kind == opConst {
			in.op = cFail
		}
	case *ir.LenStmt:
		in.op, in.a, in.target = cLen, op(s.Source), c.slot(s.Target)
	case *ir.ScanStmt:
		in.op, in.a, in.b, in.c = cScan, operand{local: c.slot(s.Source)}, operand{local: c.slot(s.Key)}, operand{local: c.slot(s.Value)}
		var b []instr
		b, err = c.block(s.Block)
		in.blocks = [][]instr{b}
	case *ir.NotStmt:
		in.op = cNot
		var b []instr
		b, err = c.block(s.Block)
		in.blocks = [][]instr{b}
	case *ir.AssignIntStmt:
		in.op, in.target, in.a = cAssignInt, c.slot(s.Target), operand{kind: opConst, term: ast.InternedTerm(int(s.Value))}
	case *ir.AssignVarStmt:
		in.op, in.a, in.target = cAssignVar, op(s.Source), c.slot(s.Target)
	case *ir.AssignVarOnceStmt:
		in.op, in.a, in.target = cAssignVarOnce, op(s.Source), c.slot(s.Target)
	case *ir.ResetLocalStmt:
		in.op, in.target = cResetLocal, c.slot(s.Target)
	case *ir.MakeNullStmt:
		in.op, in.target = cMakeNull, c.slot(s.Target)
	case *ir.MakeNumberIntStmt:
		in.op, in.target, in.a = cMakeNumber, c.slot(s.Target), operand{kind: opConst, term: ast.InternedTerm(int(s.Value))}
	case *ir.MakeNumberRefStmt:
		if s.Index < 0 || s.Index >= len(c.strings) {
			return in, fmt.Errorf("%w: number index %d", errUnsupported, s.Index)
		}
		in.op, in.target = cMakeNumber, c.slot(s.Target)
		in.a = operand{kind: opConst, term: ast.NumberTerm(json.Number(c.strings[s.Index].Value.(ast.String)))}
	case *ir.MakeArrayStmt:
		in.op, in.target, in.n = cMakeArray, c.slot(s.Target), int(s.Capacity)
	case *ir.MakeObjectStmt:
		in.op, in.target = cMakeObject, c.slot(s.Target)
	case *ir.MakeSetStmt:
		in.op, in.target = cMakeSet, c.slot(s.Target)
	case *ir.EqualStmt:
		in.op, in.a, in.b = cEqual, op(s.A), op(s.B)
	case *ir.NotEqualStmt:
		in.op, in.a, in.b = cNotEqual, op(s.A), op(s.B)
	case *ir.IsArrayStmt:
		in.op, in.a = cIsArray, op(s.Source)
	case *ir.IsObjectStmt:
		in.op, in.a = cIsObject, op(s.Source)
	case *ir.IsSetStmt:
		in.op, in.a = cIsSet, op(s.Source)
	case *ir.IsDefinedStmt:
		in.op, in.a = cIsDefined, operand{local: c.slot(s.Source)}
	case *ir.IsUndefinedStmt:
		in.op, in.a = cIsUndefined, operand{local: c.slot(s.Source)}
	case *ir.ArrayAppendStmt:
		in.op, in.a, in.target = cArrayAppend, op(s.Value), c.slot(s.Array)
	case *ir.ObjectInsertStmt:
		in.op, in.a, in.b, in.target = cObjectInsert, op(s.Key), op(s.Value), c.slot(s.Object)
	case *ir.ObjectInsertOnceStmt:
		in.op, in.a, in.b, in.target = cObjectInsertOnce, op(s.Key), op(s.Value), c.slot(s.Object)
	case *ir.ObjectMergeStmt:
		in.op, in.a, in.b, in.target = cObjectMerge, operand{local: c.slot(s.A)}, operand{local: c.slot(s.B)}, c.slot(s.Target)
	case *ir.SetAddStmt:
		in.op, in.a, in.target = cSetAdd, op(s.Value), c.slot(s.Set)
	case *ir.WithStmt:
		in.op, in.target, in.a = cWith, c.slot(s.Local), op(s.Value)
		for _, p := range s.Path {
			if p < 0 || p >= len(c.strings) {
				return in, fmt.Errorf("%w: with path index %d", errUnsupported, p)
			}
			in.pathStr = append(in.pathStr, string(c.strings[p].Value.(ast.String)))
		}
		var b []instr
		b, err = c.block(s.Block)
		in.blocks = [][]instr{b}
	case *ir.NopStmt:
		in.op = cNop
	case *ir.ResultSetAddStmt:
		in.op, in.a = cResultSetAdd, operand{local: c.slot(s.Value)}
	default:
		return in, fmt.Errorf("%w: statement %T", errUnsupported, s)
	}
	return in, err
}

func (c *compiler) builtin(name string) (*builtin, error) {
	if b, ok := c.extra[name]; ok && b != nil && b.Func != nil {
		return &builtin{name: name, decl: b.Decl, fn: b.Func, relation: b.Decl != nil && b.Decl.Relation}, nil
	}
	fn := topdown.GetBuiltin(name)
	if fn == nil {
		return nil, fmt.Errorf("%w: no implementation of built-in %q", errUnsupported, name)
	}
	b := &builtin{name: name, decl: ast.BuiltinMap[name], fn: fn}
	b.relation = b.decl != nil && b.decl.Relation
	switch name {
	case ast.Plus.Name:
		b.arith = '+'
	case ast.Minus.Name:
		b.arith = '-'
	case ast.Multiply.Name:
		b.arith = '*'
	}
	return b, nil
}
