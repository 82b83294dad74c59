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
// Sharing a constant is safe when nothing mutates it. fold folds a
// function's literals and then checks the result: every mutating statement
// (ArrayAppend, ObjectInsert(Once), SetAdd) must fill a value that a Make*
// statement made, with no other write of that local in between on any path.
// A folded literal is assigned, not made, so no constant can be filled. When
// the check fails, the function keeps its unfolded statements. The check
// follows the flow of each block rather than the whole function, because
// the planner numbers the locals of each rule body afresh: a local that one
// body fills may hold a call's result in the next.

// foldAll folds the literals of every function of a program, unless some
// function fills a value it did not make itself: that could be a constant
// its caller passed in.
func foldAll(funcs []*function) {
	for _, f := range funcs {
		if !fillsMade(f.blocks) {
			return
		}
	}
	for _, f := range funcs {
		fold(f)
	}
}

// fold rewrites f's blocks in place.
func fold(f *function) {
	mutations := map[int]int{}
	walk(f.blocks, func(in *instr) {
		if isMutation(in.op) {
			mutations[in.target]++
		}
	})
	folded := make([][]instr, len(f.blocks))
	for i, b := range f.blocks {
		folded[i] = foldBlock(b, mutations)
	}
	if fillsMade(folded) {
		f.blocks = folded
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

// overwritten returns the locals that statements in blocks assign other
// than by a Make* statement (a scan assigns its key and value locals).
func overwritten(blocks [][]instr) map[int]bool {
	out := map[int]bool{}
	walk(blocks, func(in *instr) {
		if l, w := writes(in); w && !isMake(in.op) {
			out[l] = true
		}
		if in.op == cScan {
			out[in.b.local], out[in.c.local] = true, true
		}
	})
	return out
}

// fillsMade reports whether every mutating statement of a function's
// blocks fills a value a Make* statement made (fillsMadeValues). The blocks
// run one after the other, each from the start, however the one before it
// ended: a local made in the statements that open a block, none of which
// can be undefined, is made for the blocks after it (the planner makes a
// partial set's or object's value in a block of its own, and each rule body
// adds to it in the blocks that follow).
func fillsMade(blocks [][]instr) bool {
	carried := map[int]bool{}
	for _, b := range blocks {
		if !fillsMadeValues(b, carried) {
			return false
		}
		gone := overwritten([][]instr{b})
		next := maps.Clone(carried)
		for l := range gone {
			delete(next, l)
		}
	prefix:
		for i := range b {
			switch in := &b[i]; {
			case isMake(in.op):
				if !gone[in.target] {
					next[in.target] = true
				}
			case in.op == cResetLocal, in.op == cMakeNull, in.op == cMakeNumber, in.op == cAssignInt:
			default:
				break prefix
			}
		}
		carried = next
	}
	return true
}

// fillsMadeValues reports whether every mutating statement of block fills a
// local that holds a value made by a Make* statement. made holds the locals
// known to be made on entry (parameters, input and data are not). A Make* in a
// nested block counts only inside it, since what follows the nested block
// also runs when the block stopped early; a scan's body may run again after
// it assigned a local, so what the body overwrites is not known to be made
// anywhere in it.
func fillsMadeValues(block []instr, made map[int]bool) bool {
	made = maps.Clone(made)
	for i := range block {
		in := &block[i]
		if isMutation(in.op) {
			if !made[in.target] {
				return false
			}
			continue
		}
		if len(in.blocks) > 0 {
			inner := made
			if in.op == cScan {
				inner = maps.Clone(made)
				for l := range overwritten(in.blocks) {
					delete(inner, l)
				}
				delete(inner, in.b.local)
				delete(inner, in.c.local)
			}
			for _, b := range in.blocks {
				if !fillsMadeValues(b, inner) {
					return false
				}
			}
			for l := range overwritten(in.blocks) {
				delete(made, l)
			}
		}
		if l, w := writes(in); w {
			made[l] = isMake(in.op)
		}
		if in.op == cScan {
			delete(made, in.b.local)
			delete(made, in.c.local)
		}
	}
	return true
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

// fuse turns a Make* statement and the statements after it that fill the
// same local into one instruction that builds the value in one go (OPA's
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
			if pre, built, n := fusion(block[i:]); n > 0 {
				out = append(out, fuse(pre)...)
				out = append(out, built)
				i += n
				continue
			}
		}
		out = append(out, in)
	}
	return out
}

// fusion collects the fills of the local block[0] makes. Between two fills
// it steps over the statements that make and fill another literal (the
// planner makes a nested literal right before it inserts it), which then
// run first, in pre: they neither read nor write the local, and they write
// no local that a fill before them reads. n is the number of statements
// after the Make that the built instruction and pre replace.
func fusion(block []instr) (pre []instr, built instr, n int) {
	mk := block[0]
	var pending []instr
	var ops []operand
	keys := map[string]bool{}
	read := map[int]bool{}
loop:
	for k, in := range block[1:] {
		switch {
		case in.target == mk.target && (mk.op == cMakeArray && in.op == cArrayAppend || mk.op == cMakeSet && in.op == cSetAdd):
			ops = append(ops, in.a)
		case in.target == mk.target && mk.op == cMakeObject && in.op == cObjectInsert && in.a.kind == opConst:
			key := in.a.term.String()
			if keys[key] {
				break loop
			}
			keys[key] = true
			ops = append(ops, in.a, in.b)
		case steps(&in, mk.target, read):
			pending = append(pending, in)
			continue
		default:
			break loop
		}
		for _, o := range []operand{in.a, in.b} {
			if o.kind == opLocal {
				read[o.local] = true
			}
		}
		pre = append(pre, pending...)
		pending = pending[:0]
		n = k + 1
	}
	if n == 0 {
		return nil, instr{}, 0
	}
	finishFusion(&mk, ops)
	return pre, mk, n
}

// steps reports whether fusion may move in ahead of the fills of local l
// that follow it: in makes or fills a literal (or a scalar) in another
// local, reads neither l nor a local it would then see changed, and writes
// no local in read.
func steps(in *instr, l int, read map[int]bool) bool {
	if len(in.blocks) > 0 || in.target == l || read[in.target] {
		return false
	}
	switch {
	case isMake(in.op), in.op == cMakeNull, in.op == cMakeNumber, in.op == cAssignInt:
		return true
	case isMutation(in.op) && in.op != cObjectInsertOnce:
		return !(in.a.kind == opLocal && in.a.local == l) && !(in.b.kind == opLocal && in.b.local == l)
	}
	return false
}

func finishFusion(mk *instr, args []operand) {
	switch mk.op {
	case cMakeArray:
		mk.op = cBuildArray
	case cMakeSet:
		mk.op = cBuildSet
	case cMakeObject:
		mk.op = cBuildObject
	}
	mk.args = args
}
