package irvm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"
)

// Results of running a list of statements.
const (
	done     = -1 // every statement was defined
	returned = -2 // a ReturnLocalStmt ended the function
	// n >= 0: break out of n enclosing blocks (0: the innermost, which is
	// also what an undefined statement does).
)

// machine is the state of one evaluation. Frames are carved out of one
// slice (stack discipline), so a call allocates nothing.
type machine struct {
	prog   *program
	stack  []*ast.Term
	sp     int
	memo   []*ast.Term // per memoized function: its result (undefinedTerm when undefined)
	result ast.Set
	bctx   topdown.BuiltinContext
	strict bool
	data   dataDoc
	err    error
	args   [8]*ast.Term // scratch for built-in operands
	out    *ast.Term    // a built-in's output
	iter   func(*ast.Term) error
	spare  [][]*ast.Term // memos that with statements used, for the next ones
	ctx    context.Context
	steps  int            // loop iterations, for cancellation checks
	cache  builtins.Cache // the built-ins' per-evaluation cache, emptied after each
}

// freshMemo returns an empty memo for the body of a with statement, whose
// replaced input or data may change any rule's value.
func (m *machine) freshMemo() []*ast.Term {
	if n := len(m.spare); n > 0 {
		memo := m.spare[n-1]
		m.spare = m.spare[:n-1]
		clear(memo)
		return memo
	}
	return make([]*ast.Term, len(m.prog.funcs))
}

// newMachine returns a machine for prog; its built-in output callback is
// made once, not per call.
func newMachine(prog *program) *machine {
	m := &machine{
		prog:  prog,
		stack: make([]*ast.Term, max(256, 4*prog.maxSlot)),
		memo:  make([]*ast.Term, len(prog.funcs)),
		cache: builtins.Cache{},
	}
	m.iter = func(t *ast.Term) error {
		m.out = t
		return nil
	}
	return m
}

// undefinedTerm marks a memoized undefined result.
var undefinedTerm = ast.NullTerm()

// dataDoc is the data document, read from the store only as deep as a plan
// goes: data.pat.settings.organizations["octo-org"] reads that one
// organization's settings, not all of data.
type dataDoc struct {
	ctx   context.Context
	store storage.Store
	txn   storage.Transaction
}

// dataRef is a data path that has not been read yet. It travels through
// locals as the Value of a term; read turns it into the value at the path.
type dataRef struct {
	ast.Null // never compared or printed: every consumer reads it first
	path     storage.Path
	// root is the whole data tree, when the store hands it out as an AST
	// value: the root's children are then looked up in it directly.
	root ast.Object
}

// systemKey is data.system: like topdown, a plan that reads the whole data
// document does not see it (OPA keeps its own configuration policies
// there, e.g. the server's authorization); data.system.… by path still
// works.
var systemKey = ast.InternedTerm("system")

// isRoot tells whether t is the data document itself.
func isRoot(t *ast.Term) bool {
	if t == nil {
		return false
	}
	r, ok := t.Value.(*dataRef)
	return ok && len(r.path) == 0
}

// withoutSystem returns v without its "system" key.
func withoutSystem(v ast.Value) ast.Value {
	obj, ok := v.(ast.Object)
	if !ok || obj.Get(systemKey) == nil {
		return v
	}
	out := ast.NewObjectWithCapacity(obj.Len() - 1)
	obj.Foreach(func(k, v *ast.Term) {
		if !k.Equal(systemKey) {
			out.Insert(k, v)
		}
	})
	return out
}

func (m *machine) conflict(_ *instr, msg string) int {
	m.err = &topdown.Error{Code: topdown.ConflictErr, Message: msg}
	return returned
}

// read returns the term in a local, reading a data path from the store when
// the local holds one. nil is undefined.
func (m *machine) read(frame []*ast.Term, o operand) *ast.Term {
	if o.kind == opConst {
		return o.term
	}
	t := frame[o.local]
	if t == nil {
		return nil
	}
	if r, ok := t.Value.(*dataRef); ok {
		if len(r.path) == 0 {
			// The whole document, without data.system; the local keeps the
			// reference, through which data.system stays reachable.
			if r.root != nil {
				return ast.NewTerm(withoutSystem(r.root))
			}
			v, err := m.readData(r.path)
			if err != nil {
				return nil
			}
			return ast.NewTerm(withoutSystem(v))
		}
		v, err := m.readData(r.path)
		if err != nil {
			return nil
		}
		t = ast.NewTerm(v)
		frame[o.local] = t
	}
	return t
}

// readData reads the value at a data path; nil when there is none.
func (m *machine) readData(path storage.Path) (ast.Value, error) {
	d := &m.data
	v, err := d.store.Read(d.ctx, d.txn, path)
	if err != nil {
		if storage.IsNotFound(err) {
			return nil, err
		}
		if m.err == nil {
			m.err = err
		}
		return nil, err
	}
	if av, ok := v.(ast.Value); ok {
		return av, nil
	}
	av, err := ast.InterfaceToValue(v)
	if err != nil && m.err == nil {
		m.err = err
	}
	return av, err
}

// call runs function f with the given argument terms and returns its
// result, nil when undefined.
func (m *machine) call(fi int, args []*ast.Term) *ast.Term {
	f := m.prog.funcs[fi]
	if f.memoize {
		if t := m.memo[fi]; t != nil {
			if t == undefinedTerm {
				return nil
			}
			return t
		}
	}
	base := m.sp
	if base+f.frame > len(m.stack) {
		grown := make([]*ast.Term, max(2*len(m.stack), base+f.frame))
		copy(grown, m.stack[:base])
		m.stack = grown
	}
	frame := m.stack[base : base+f.frame : base+f.frame]
	clear(frame)
	for i, p := range f.params {
		frame[p] = args[i]
	}
	m.sp = base + f.frame
	var out *ast.Term
	for i, b := range f.blocks {
		r := m.run(frame, b)
		if r == returned {
			if m.err != nil {
				m.sp = base
				return nil
			}
			out = frame[f.ret]
			break
		}
		if r > 0 || i == len(f.blocks)-1 {
			out = frame[f.ret]
			break
		}
	}
	if out != nil {
		if _, ok := out.Value.(*dataRef); ok {
			// A function's result is a value of its own, read like any.
			local := [1]*ast.Term{out}
			out = m.read(local[:], operand{local: 0})
		}
	}
	// The frame is cleared on the next use; the result is a term of its own.
	m.sp = base
	if f.memoize && m.err == nil {
		if out == nil {
			m.memo[fi] = undefinedTerm
		} else {
			m.memo[fi] = out
		}
	}
	return out
}

// run executes a block's statements. It returns done, returned, or the
// number of enclosing blocks still to leave (0: this one).
func (m *machine) run(frame []*ast.Term, block []instr) int {
	for i := range block {
		in := &block[i]
		switch in.op {
		case cReturnLocal:
			return returned
		case cCall:
			var buf [8]*ast.Term
			args := buf[:0]
			if len(in.args) > len(buf) {
				args = make([]*ast.Term, 0, len(in.args))
			}
			// Arguments go as they are: undefined (an absent input) and
			// unread data paths included.
			for _, a := range in.args {
				if a.kind == opConst {
					args = append(args, a.term)
				} else {
					args = append(args, frame[a.local])
				}
			}
			t := m.call(in.n, args)
			if m.err != nil {
				return returned
			}
			if t == nil {
				return 0
			}
			frame[in.target] = t
		case cCallBuiltin:
			t, ok := m.builtin(frame, in)
			if m.err != nil {
				return returned
			}
			if !ok {
				return 0
			}
			frame[in.target] = t
		case cCallDynamic:
			var b strings.Builder
			for _, p := range in.path {
				t := m.read(frame, p)
				s, ok := t.Value.(ast.String)
				if t == nil || !ok {
					return 0
				}
				b.WriteString(string(s))
				b.WriteByte(0)
			}
			fi, ok := m.prog.byPath[b.String()]
			if !ok {
				return 0
			}
			args := make([]*ast.Term, len(in.args))
			for j, a := range in.args {
				args[j] = frame[a.local]
			}
			t := m.call(fi, args)
			if m.err != nil {
				return returned
			}
			if t == nil {
				return 0
			}
			frame[in.target] = t
		case cBlock:
			for _, b := range in.blocks {
				r := m.run(frame, b)
				if r == returned {
					return returned
				}
				if r > 0 {
					return r - 1
				}
			}
		case cBreak:
			return in.n
		case cDot:
			src := frame[in.a.local]
			if src == nil {
				return 0
			}
			key := m.read(frame, in.b)
			if key == nil {
				return 0
			}
			if r, ok := src.Value.(*dataRef); ok {
				if r.root != nil {
					t := r.root.Get(key) // the root's child, system included
					if t == nil {
						return 0
					}
					frame[in.target] = t
					continue
				}
				if k, ok := key.Value.(ast.String); ok {
					frame[in.target] = ast.NewTerm(&dataRef{path: appendPath(r.path, string(k))})
					continue
				}
				if src = m.read(frame, in.a); src == nil {
					return 0
				}
			}
			t := dot(src.Value, key)
			if t == nil {
				return 0
			}
			frame[in.target] = t
		case cLen:
			src := m.read(frame, in.a)
			if src == nil {
				return 0
			}
			n, ok := length(src.Value)
			if !ok {
				return 0
			}
			frame[in.target] = ast.InternedTerm(n)
		case cScan:
			r := m.scan(frame, in)
			if r == returned {
				return returned
			}
			if r >= 2 {
				return r - 2
			}
		case cNot:
			r := m.run(frame, in.blocks[0])
			switch {
			case r == returned:
				return returned
			case r == done:
				return 0
			case r > 0:
				return r - 1
			}
		case cAssignInt, cMakeNumber:
			frame[in.target] = in.a.term
		case cAssignVar:
			// A data path is copied as it is, unread.
			if in.a.kind == opLocal {
				frame[in.target] = frame[in.a.local]
			} else {
				frame[in.target] = in.a.term
			}
		case cAssignVarOnce:
			t := m.read(frame, in.a)
			if t == nil {
				if m.err != nil {
					return returned
				}
				return 0
			}
			if cur := frame[in.target]; cur != nil {
				if ast.Compare(cur.Value, t.Value) != 0 {
					return m.conflict(in, "complete rules must not produce multiple outputs")
				}
				continue
			}
			frame[in.target] = t
		case cResetLocal:
			frame[in.target] = nil
		case cMakeNull:
			frame[in.target] = ast.InternedNullTerm
		case cMakeArray:
			frame[in.target] = ast.NewTerm(ast.NewArrayWithCapacity(in.n))
		case cMakeObject:
			frame[in.target] = ast.NewTerm(ast.NewObject())
		case cMakeSet:
			frame[in.target] = ast.NewTerm(ast.NewSet())
		case cEqual, cNotEqual:
			a, b := m.read(frame, in.a), m.read(frame, in.b)
			if a == nil || b == nil {
				return 0
			}
			if (ast.Compare(a.Value, b.Value) == 0) != (in.op == cEqual) {
				return 0
			}
		case cIsArray:
			t := m.read(frame, in.a)
			if t == nil {
				return 0
			}
			if _, ok := t.Value.(*ast.Array); !ok {
				return 0
			}
		case cIsObject:
			t := m.read(frame, in.a)
			if t == nil {
				return 0
			}
			if _, ok := t.Value.(ast.Object); !ok {
				return 0
			}
		case cIsSet:
			t := m.read(frame, in.a)
			if t == nil {
				return 0
			}
			if _, ok := t.Value.(ast.Set); !ok {
				return 0
			}
		case cIsDefined:
			t := frame[in.a.local]
			if t == nil {
				return 0
			}
			if _, ok := t.Value.(*dataRef); ok && m.read(frame, in.a) == nil {
				return 0
			}
		case cIsUndefined:
			t := frame[in.a.local]
			if t != nil {
				if _, ok := t.Value.(*dataRef); !ok || m.read(frame, in.a) != nil {
					return 0
				}
			}
		case cArrayAppend:
			arr, ok := frame[in.target].Value.(*ast.Array)
			v := m.read(frame, in.a)
			if !ok || v == nil {
				return 0
			}
			*arr = *arr.Append(v)
		case cObjectInsert, cObjectInsertOnce:
			obj, ok := frame[in.target].Value.(ast.Object)
			k, v := m.read(frame, in.a), m.read(frame, in.b)
			if !ok || k == nil || v == nil {
				return 0
			}
			if in.op == cObjectInsertOnce {
				if cur := obj.Get(k); cur != nil {
					if ast.Compare(cur.Value, v.Value) != 0 {
						return m.conflict(in, "object keys must be unique")
					}
					continue
				}
			}
			obj.Insert(k, v)
		case cObjectMerge:
			// The plan of a query for all of data merges the base documents
			// with the rules' tree: both without data.system.
			root := isRoot(frame[in.a.local]) || isRoot(frame[in.b.local])
			a, b := m.read(frame, in.a), m.read(frame, in.b)
			if a == nil || b == nil {
				return 0
			}
			ao, ok1 := a.Value.(ast.Object)
			bo, ok2 := b.Value.(ast.Object)
			if !ok1 || !ok2 {
				return m.conflict(in, "object merge of non-objects")
			}
			merged, ok := ao.Merge(bo)
			if !ok {
				return m.conflict(in, "object keys must be unique")
			}
			if root {
				frame[in.target] = ast.NewTerm(withoutSystem(merged))
				continue
			}
			frame[in.target] = ast.NewTerm(merged)
		case cSetAdd:
			s, ok := frame[in.target].Value.(ast.Set)
			v := m.read(frame, in.a)
			if !ok || v == nil {
				return 0
			}
			s.Add(v)
		case cWith:
			r := m.with(frame, in)
			switch {
			case r == returned:
				return returned
			case r == 0:
				return 0
			case r > 0:
				return r - 1
			}
		case cNop:
		case cResultSetAdd:
			t := m.read(frame, in.a)
			if t == nil {
				return 0
			}
			m.result.Add(t)
		case cFail:
			return 0
		case cBuildArray, cBuildSet, cBuildObject:
			if !m.build(frame, in) {
				return 0
			}
		default:
			m.err = fmt.Errorf("irvm: unknown instruction %d", in.op)
			return returned
		}
	}
	return done
}

// build makes the value of a fused Make* and its inserts. When an element
// is undefined it leaves what the separate statements would have left (the
// value filled up to there) and fails.
func (m *machine) build(frame []*ast.Term, in *instr) bool {
	var buf [16]*ast.Term
	terms := buf[:0]
	if len(in.args) > len(buf) {
		terms = make([]*ast.Term, 0, len(in.args))
	}
	ok := true
	for _, a := range in.args {
		t := m.read(frame, a)
		if t == nil {
			ok = false
			break
		}
		terms = append(terms, t)
	}
	switch in.op {
	case cBuildArray:
		frame[in.target] = ast.NewTerm(ast.NewArray(slices.Clone(terms)...))
	case cBuildSet:
		frame[in.target] = ast.NewTerm(ast.NewSet(terms...))
	default:
		if !ok && len(terms)%2 == 1 {
			terms = terms[:len(terms)-1]
		}
		pairs := make([][2]*ast.Term, len(terms)/2)
		for i := range pairs {
			pairs[i] = [2]*ast.Term{terms[2*i], terms[2*i+1]}
		}
		frame[in.target] = ast.NewTerm(ast.NewObject(pairs...))
	}
	return ok
}

// intArith computes plus, minus or mul of two integers that fit in 64 bits
// without the big-number arithmetic of OPA's built-ins (which gives the same
// result); ok is false for anything else, which then goes to the built-in.
func intArith(op byte, args []*ast.Term) (*ast.Term, bool) {
	if len(args) != 2 {
		return nil, false
	}
	an, ok1 := args[0].Value.(ast.Number)
	bn, ok2 := args[1].Value.(ast.Number)
	if !ok1 || !ok2 {
		return nil, false
	}
	a, ok1 := an.Int64()
	b, ok2 := bn.Int64()
	if !ok1 || !ok2 {
		return nil, false
	}
	var c int64
	switch op {
	case '+':
		c = a + b
		if (c > a) != (b > 0) {
			return nil, false
		}
	case '-':
		c = a - b
		if (c < a) != (b > 0) {
			return nil, false
		}
	case '*':
		if a == 0 || b == 0 {
			return ast.InternedTerm(0), true
		}
		c = a * b
		if c/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
			return nil, false
		}
	default:
		return nil, false
	}
	if c >= -1024 && c <= 1024 {
		return ast.InternedTerm(int(c)), true
	}
	return ast.NumberTerm(json.Number(strconv.FormatInt(c, 10))), true
}

// cancelEvery is how many loop iterations pass between two looks at the
// evaluation's context: a plan loops only in scans, so a policy that walks
// a large document is stopped there when its caller gives up (OPA's server
// cancels when the client goes away).
const cancelEvery = 256

// canceled tells whether the evaluation should stop, and sets the error.
func (m *machine) canceled() bool {
	var err error
	if m.ctx != nil {
		err = m.ctx.Err()
	}
	if err == nil && m.bctx.Cancel != nil && m.bctx.Cancel.Cancelled() {
		err = context.Canceled
	}
	if err == nil {
		return false
	}
	m.err = &topdown.Error{Code: topdown.CancelErr, Message: "caller cancelled query execution: " + err.Error()}
	return true
}

// scan runs the block once per element. Its result follows the block
// levels of OPA's Wasm compiler: 0 continues with the next element, 1
// leaves the scan, n >= 2 leaves n-2 blocks around it.
func (m *machine) scan(frame []*ast.Term, in *instr) int {
	src := m.read(frame, in.a)
	if src == nil {
		return done
	}
	body := in.blocks[0]
	each := func(k, v *ast.Term) int {
		if m.steps++; m.steps%cancelEvery == 0 && m.canceled() {
			return returned
		}
		frame[in.b.local], frame[in.c.local] = k, v
		r := m.run(frame, body)
		if r == done || r == 0 {
			return done
		}
		return r
	}
	switch v := src.Value.(type) {
	case *ast.Array:
		for i := range v.Len() {
			if r := each(ast.InternedTerm(i), v.Elem(i)); r != done {
				return r
			}
		}
	case ast.Object:
		for _, k := range v.Keys() {
			if r := each(k, v.Get(k)); r != done {
				return r
			}
		}
	case ast.Set:
		for _, e := range v.Slice() {
			if r := each(e, e); r != done {
				return r
			}
		}
	}
	return done
}

// with runs its block with a local replaced, or a path in it upserted, and
// with a memo of its own. 0 when the block was undefined.
func (m *machine) with(frame []*ast.Term, in *instr) int {
	saved := frame[in.target]
	if len(in.pathStr) == 0 {
		// Also the undefined input that a nested with restores.
		if in.a.kind == opConst {
			frame[in.target] = in.a.term
		} else {
			frame[in.target] = frame[in.a.local]
		}
	} else {
		val := m.read(frame, in.a)
		if val == nil {
			return 0
		}
		base := saved
		root := isRoot(base)
		if base != nil {
			if r, ok := base.Value.(*dataRef); ok {
				switch {
				case r.root != nil:
					base = ast.NewTerm(r.root)
				case root:
					v, err := m.readData(r.path) // data.system included
					if err != nil && m.err != nil {
						return returned
					}
					base = nil
					if v != nil {
						base = ast.NewTerm(v)
					}
				default:
					if base = m.read(frame, operand{local: in.target}); base == nil && m.err != nil {
						return returned
					}
				}
			}
		}
		replaced := upsert(base, in.pathStr, val)
		if obj, ok := replaced.(ast.Object); ok && root {
			// Still the data document: read whole, it hides data.system.
			frame[in.target] = ast.NewTerm(&dataRef{path: storage.Path{}, root: obj})
		} else {
			frame[in.target] = ast.NewTerm(replaced)
		}
	}
	savedMemo := m.memo
	m.memo = m.freshMemo()
	r := m.run(frame, in.blocks[0])
	m.spare = append(m.spare, m.memo)
	m.memo = savedMemo
	frame[in.target] = saved
	if r == done {
		return done
	}
	return r
}

// upsert returns a copy of base with value at path, creating objects on the
// way and copying those it goes through.
func upsert(base *ast.Term, path []string, value *ast.Term) ast.Value {
	var obj ast.Object
	if base != nil {
		if o, ok := base.Value.(ast.Object); ok {
			obj = o.Copy()
		}
	}
	if obj == nil {
		obj = ast.NewObject()
	}
	key := ast.StringTerm(path[0])
	if len(path) == 1 {
		obj.Insert(key, value)
		return obj
	}
	obj.Insert(key, ast.NewTerm(upsert(obj.Get(key), path[1:], value)))
	return obj
}

func appendPath(p storage.Path, k string) storage.Path {
	out := make(storage.Path, len(p)+1)
	copy(out, p)
	out[len(p)] = k
	return out
}

// dot looks a key up in a composite value.
func dot(v ast.Value, key *ast.Term) *ast.Term {
	switch v := v.(type) {
	case ast.Object:
		return v.Get(key)
	case *ast.Array:
		n, ok := key.Value.(ast.Number)
		if !ok {
			return nil
		}
		i, ok := n.Int()
		if !ok || i < 0 || i >= v.Len() {
			return nil
		}
		return v.Elem(i)
	case ast.Set:
		if v.Contains(key) {
			return key
		}
	}
	return nil
}

func length(v ast.Value) (int, bool) {
	switch v := v.(type) {
	case *ast.Array:
		return v.Len(), true
	case ast.Object:
		return v.Len(), true
	case ast.Set:
		return v.Len(), true
	case ast.String:
		return utf8.RuneCountInString(string(v)), true
	}
	return 0, false
}

// relation calls a built-in with many outputs (walk) and returns them all
// as one array, as the plan expects of a relation: it scans the array and
// unifies each element with the call's output term. (Keeping the last
// output only, as for a function, made walk(x, [path, value]) see one pair.)
func (m *machine) relation(args []*ast.Term, in *instr) (*ast.Term, bool) {
	var outs []*ast.Term
	err := in.builtin.fn(m.bctx, args, func(t *ast.Term) error {
		outs = append(outs, t)
		return nil
	})
	if err != nil {
		var h topdown.Halt
		if errors.As(err, &h) || m.strict {
			m.err = err
		}
		return nil, false
	}
	return ast.ArrayTerm(outs...), true
}

// builtin calls a built-in function. ok is false when it is undefined (no
// output, or an error that strict mode does not raise).
func (m *machine) builtin(frame []*ast.Term, in *instr) (*ast.Term, bool) {
	args := m.args[:0]
	if len(in.args) > len(m.args) {
		args = make([]*ast.Term, 0, len(in.args))
	}
	for _, a := range in.args {
		t := m.read(frame, a)
		if t == nil {
			return nil, false
		}
		args = append(args, t)
	}
	if in.builtin.arith != 0 {
		if t, ok := intArith(in.builtin.arith, args); ok {
			return t, true
		}
	}
	if in.builtin.relation {
		return m.relation(args, in)
	}
	m.out = nil
	err := in.builtin.fn(m.bctx, args, m.iter)
	out := m.out
	m.out = nil
	if err != nil {
		var h topdown.Halt
		if errors.As(err, &h) || m.strict {
			m.err = err
		}
		return nil, false
	}
	if out == nil {
		if in.builtin.decl != nil && in.builtin.decl.Decl.Result() == nil {
			return ast.InternedTerm(true), true
		}
		return nil, false
	}
	return out, true
}
