package irvm

import (
	"maps"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Constant folding. A plan builds every composite literal of the policy at
// run time: {"read", "write"} is MakeSet and two SetAdds, on each
// evaluation. Where a function only ever fills a local it made (the
// planner's way), a literal whose elements are all constants is built once
// here and assigned as a constant instead; literals nested in literals fold
// from the inside out.
//
// Sharing a constant is safe when nothing mutates it: the only mutating
// statements (ArrayAppend, ObjectInsert(Once), SetAdd) must target locals
// that are written by Make* statements alone, so no folded value can be
// aliased into a local that is later filled. fold checks that invariant per
// function and leaves a function that breaks it as it is.

// fold rewrites f's blocks in place.
func fold(f *function) {
	if !fillsOnlyMadeLocals(f.blocks, f.params) {
		return
	}
	mutations := map[int]int{}
	walk(f.blocks, func(in *instr) {
		if isMutation(in.op) {
			mutations[in.target]++
		}
	})
	for i := range f.blocks {
		f.blocks[i] = foldBlock(f.blocks[i], mutations)
	}
}

func isMutation(op code) bool {
	return op == cArrayAppend || op == cObjectInsert || op == cObjectInsertOnce || op == cSetAdd
}

func isMake(op code) bool {
	return op == cMakeArray || op == cMakeObject || op == cMakeSet
}

// walk calls fn on every instruction, nested ones included.
func walk(blocks [][]instr, fn func(*instr)) {
	for _, b := range blocks {
		for i := range b {
			fn(&b[i])
			walk(b[i].blocks, fn)
		}
	}
}

// writes reports the local an instruction assigns, if any (mutations of a
// value in place are not assignments).
func writes(in *instr) (int, bool) {
	switch in.op {
	case cCall, cCallBuiltin, cCallDynamic, cDot, cLen, cAssignInt, cAssignVar, cAssignVarOnce,
		cResetLocal, cMakeNull, cMakeNumber, cMakeArray, cMakeObject, cMakeSet, cObjectMerge, cWith:
		return in.target, true
	}
	return 0, false
}

// fillsOnlyMadeLocals checks the invariant above: every local that some
// statement mutates is assigned only by Make* and ResetLocal statements.
func fillsOnlyMadeLocals(blocks [][]instr, params []int) bool {
	mutated := map[int]bool{}
	walk(blocks, func(in *instr) {
		if isMutation(in.op) {
			mutated[in.target] = true
		}
	})
	ok := true
	// A parameter (input and data included) holds the caller's value.
	for _, p := range append([]int{0, 1}, params...) {
		if mutated[p] {
			ok = false
		}
	}
	walk(blocks, func(in *instr) {
		if in.op == cScan && (mutated[in.b.local] || mutated[in.c.local]) {
			ok = false
		}
		if l, w := writes(in); w && mutated[l] && !isMake(in.op) && in.op != cResetLocal {
			ok = false
		}
	})
	return ok
}

// foldBlock folds the literals of one block (and, recursively, of the
// blocks nested in it).
func foldBlock(block []instr, mutations map[int]int) []instr {
	out := block[:0:0]
	consts := map[int]*ast.Term{} // locals that hold a known constant at this point
	for i := 0; i < len(block); i++ {
		in := block[i]
		if len(in.blocks) > 0 {
			nested := make([][]instr, len(in.blocks))
			for j, b := range in.blocks {
				nested[j] = foldBlock(b, mutations)
			}
			in.blocks = nested
			// A nested block may assign anything: forget what is known.
			clear(consts)
		}
		if isMake(in.op) {
			trial := maps.Clone(consts)
			if pre, t, next := literal(block, i, mutations, trial); t != nil {
				out = append(out, pre...)
				out = append(out, instr{op: cAssignInt, target: in.target, a: operand{kind: opConst, term: t}})
				consts = trial
				consts[in.target] = t
				i = next - 1
				continue
			}
		}
		out = append(out, in)
		track(&in, consts)
	}
	return out
}

// track updates what is known of the locals' constants after in.
func track(in *instr, consts map[int]*ast.Term) {
	if l, w := writes(in); w {
		delete(consts, l)
	}
	if in.op == cScan {
		delete(consts, in.b.local)
		delete(consts, in.c.local)
	}
	if t, ok := scalar(in, consts); ok {
		consts[in.target] = t
	}
}

// scalar returns the constant a statement assigns when it makes a scalar
// from constants.
func scalar(in *instr, consts map[int]*ast.Term) (*ast.Term, bool) {
	switch in.op {
	case cMakeNull:
		return ast.InternedNullTerm, true
	case cMakeNumber, cAssignInt:
		return in.a.term, true
	case cAssignVar:
		if a := constOperand(in.a, consts); a.kind == opConst {
			return a.term, true
		}
	}
	return nil, false
}

// constOperand resolves a read of a local that holds a known constant.
func constOperand(o operand, consts map[int]*ast.Term) operand {
	if o.kind == opLocal {
		if t, ok := consts[o.local]; ok {
			return operand{kind: opConst, term: t}
		}
	}
	return o
}

// literal tries to fold the Make* statement at block[i] with the inserts
// that fill its local. Between them the planner makes the literal's scalars
// and nested literals; those are folded too and returned in pre, to run
// first. It returns the constant (nil when the literal is not constant:
// some element is not known, or the local is filled elsewhere too) and
// the index of the first statement after the literal.
func literal(block []instr, i int, mutations map[int]int, consts map[int]*ast.Term) (pre []instr, t *ast.Term, next int) {
	mk := block[i]
	var keys, elems []*ast.Term
	n := 0
	j := i + 1
loop:
	for j < len(block) {
		in := block[j]
		switch {
		case isMutation(in.op) && in.target == mk.target:
			a, b := constOperand(in.a, consts), constOperand(in.b, consts)
			switch {
			case mk.op == cMakeArray && in.op == cArrayAppend && a.kind == opConst,
				mk.op == cMakeSet && in.op == cSetAdd && a.kind == opConst:
				elems = append(elems, a.term)
			case mk.op == cMakeObject && in.op == cObjectInsert && a.kind == opConst && b.kind == opConst:
				keys = append(keys, a.term)
				elems = append(elems, b.term)
			default:
				return nil, nil, 0
			}
			n++
			j++
		case isMake(in.op) && in.target != mk.target:
			npre, nt, nnext := literal(block, j, mutations, consts)
			if nt == nil {
				break loop
			}
			pre = append(pre, npre...)
			pre = append(pre, instr{op: cAssignInt, target: in.target, a: operand{kind: opConst, term: nt}})
			consts[in.target] = nt
			j = nnext
		default:
			if l, w := writes(&in); !w || l == mk.target || len(in.blocks) > 0 {
				break loop
			}
			st, ok := scalar(&in, consts)
			if !ok {
				break loop
			}
			pre = append(pre, in)
			consts[in.target] = st
			j++
		}
	}
	if n != mutations[mk.target] {
		return nil, nil, 0
	}
	switch mk.op {
	case cMakeArray:
		return pre, ast.ArrayTerm(elems...), j
	case cMakeSet:
		return pre, ast.SetTerm(elems...), j
	default:
		obj := ast.NewObject()
		for k := range keys {
			obj.Insert(keys[k], elems[k])
		}
		return pre, ast.NewTerm(obj), j
	}
}

// fuse turns a Make* statement and the statements right after it that fill
// the same local into one instruction that builds the value in one go (OPA's
// constructors size it once), instead of growing it an element at a time.
// Objects are fused only when their keys are distinct constants: a literal's
// keys, which no later insert can replace. The value stays an ordinary
// mutable one, so statements further on may still fill it.
func fuse(block []instr) []instr {
	out := block[:0:0]
	for i := 0; i < len(block); i++ {
		in := block[i]
		for j, b := range in.blocks {
			in.blocks[j] = fuse(b)
		}
		if isMake(in.op) {
			if built, n := fusion(block[i:]); n > 0 {
				out = append(out, built)
				i += n
				continue
			}
		}
		out = append(out, in)
	}
	return out
}

func fusion(block []instr) (instr, int) {
	mk := block[0]
	var args []operand
	keys := map[string]bool{}
	n := 0
	for _, in := range block[1:] {
		if in.target != mk.target {
			break
		}
		switch {
		case mk.op == cMakeArray && in.op == cArrayAppend, mk.op == cMakeSet && in.op == cSetAdd:
			args = append(args, in.a)
		case mk.op == cMakeObject && in.op == cObjectInsert && in.a.kind == opConst:
			k := in.a.term.String()
			if keys[k] {
				return instr{}, 0
			}
			keys[k] = true
			args = append(args, in.a, in.b)
		default:
			return mk, finishFusion(&mk, args, n)
		}
		n++
	}
	return mk, finishFusion(&mk, args, n)
}

func finishFusion(mk *instr, args []operand, n int) int {
	if n == 0 {
		return 0
	}
	switch mk.op {
	case cMakeArray:
		mk.op = cBuildArray
	case cMakeSet:
		mk.op = cBuildSet
	case cMakeObject:
		mk.op = cBuildObject
	}
	mk.args = args
	return n
}
