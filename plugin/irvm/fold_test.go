package irvm

import (
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Statements for the cases below; L is the local a literal is made in.
const L = 7

func str(s string) operand { return operand{kind: opConst, term: ast.StringTerm(s)} }
func loc(l int) operand    { return operand{kind: opLocal, local: l} }

func makeObj(l int) instr { return instr{op: cMakeObject, target: l} }
func insert(l int, k, v string) instr {
	return instr{op: cObjectInsert, target: l, a: str(k), b: str(v)}
}
func call(l int) instr        { return instr{op: cCall, target: l} }
func equal() instr            { return instr{op: cEqual, a: loc(3), b: str("x")} }
func nested(b ...instr) instr { return instr{op: cBlock, blocks: [][]instr{b}} }
func scan(body ...instr) instr {
	return instr{op: cScan, a: loc(2), b: loc(4), c: loc(5), blocks: [][]instr{body}}
}

// TestFillsMade: the check fold relies on accepts what the planner emits
// (a literal made and filled in one body, a partial set made in a block of
// its own and filled by the bodies after it, a comprehension filled in a
// scan) and refuses every way a filled local could hold a value that was
// not made right there, which a folded constant could be.
func TestFillsMade(t *testing.T) {
	for _, tc := range []struct {
		name   string
		blocks [][]instr
		want   bool
	}{
		{"made then filled", [][]instr{{makeObj(L), insert(L, "a", "b")}}, true},
		{"partial set: made in a block, filled by the next ones", [][]instr{
			{makeObj(L)},
			{equal(), insert(L, "a", "b")},
			{call(3), insert(L, "c", "d")},
		}, true},
		{"comprehension: made, filled in a scan", [][]instr{{makeObj(L), scan(insert(L, "a", "b"))}}, true},
		{"made and filled inside a nested block", [][]instr{{nested(makeObj(L), insert(L, "a", "b"))}}, true},
		{"filled, never made", [][]instr{{insert(L, "a", "b")}}, false},
		{"a parameter filled", [][]instr{{insert(0, "a", "b")}}, false},
		{"a call's result filled", [][]instr{{call(L), insert(L, "a", "b")}}, false},
		{"made, then assigned, then filled", [][]instr{{makeObj(L),
			{op: cAssignVar, target: L, a: loc(3)}, insert(L, "a", "b")}}, false},
		{"made in a nested block, filled after it", [][]instr{{nested(equal(), makeObj(L)), insert(L, "a", "b")}}, false},
		{"made after a statement that may be undefined: not made for the next block", [][]instr{
			{equal(), makeObj(L)},
			{insert(L, "a", "b")},
		}, false},
		{"made in a block, assigned later in it: not made for the next block", [][]instr{
			{makeObj(L), equal(), call(L)},
			{insert(L, "a", "b")},
		}, false},
		{"a scan overwrites what its next round fills", [][]instr{{makeObj(L),
			scan(insert(L, "a", "b"), call(L))}}, false},
		{"the scan's own value filled", [][]instr{{makeObj(5), scan(insert(5, "a", "b"))}}, false},
		{"assigned in a nested block, filled after it", [][]instr{{makeObj(L), nested(call(L)), insert(L, "a", "b")}}, false},
	} {
		if got := fillsMade(tc.blocks); got != tc.want {
			t.Errorf("%s: fillsMade = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestFoldAcrossBodies: a constant literal folds in a function whose rule
// bodies reuse local numbers (one body fills local L, the next assigns L a
// call's result), and a function that fills a local it did not make stops
// folding in every function, since that local could hold a constant its
// caller passed in.
func TestFoldAcrossBodies(t *testing.T) {
	body := func() [][]instr {
		return [][]instr{
			{nested(equal(), makeObj(L), insert(L, "git-upload-pack", "read"), instr{op: cDot, target: 9, a: loc(L), b: loc(4)})},
			{nested(call(L), equal())},
		}
	}
	f := &function{name: "route", blocks: body()}
	foldAll([]*function{f})
	lit := f.blocks[0][0].blocks[0][1]
	if lit.op != cAssignInt || lit.a.kind != opConst || lit.a.term.String() != `{"git-upload-pack": "read"}` {
		t.Fatalf("the literal was not folded: %+v", lit)
	}
	if n := len(f.blocks[0][0].blocks[0]); n != 3 {
		t.Fatalf("folded body has %d statements, want 3 (equal, the constant, dot)", n)
	}

	g := &function{name: "route", blocks: body()}
	bad := &function{name: "fills a parameter", blocks: [][]instr{{insert(2, "a", "b")}}}
	foldAll([]*function{g, bad})
	if op := g.blocks[0][0].blocks[0][1].op; op != cMakeObject {
		t.Fatalf("folded although another function fills a value it did not make: op %d", op)
	}
}

func insertLocal(l int, k string, v int) instr {
	return instr{op: cObjectInsert, target: l, a: str(k), b: loc(v)}
}

// TestFuseStepsOverNestedLiterals: the planner makes a nested literal
// between two inserts of the outer one; fuse builds the nested one first and
// the outer one in one instruction, and stops where moving statements ahead
// would change what they read.
func TestFuseStepsOverNestedLiterals(t *testing.T) {
	ops := func(b []instr) (out []code) {
		for _, in := range b {
			out = append(out, in.op)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		block []instr
		want  []code
		args  int // operands of the last build of L
	}{
		{"nested literal stepped over", []instr{
			makeObj(L), insertLocal(L, "action", 3),
			makeObj(8), insertLocal(8, "owner", 4),
			insertLocal(L, "resource", 8),
			{op: cAssignVarOnce, target: 2, a: loc(L)},
		}, []code{cBuildObject, cBuildObject, cAssignVarOnce}, 4},
		{"a statement in between that reads the literal", []instr{
			makeObj(L), insertLocal(L, "action", 3),
			makeObj(8), insertLocal(8, "outer", L),
			insertLocal(L, "resource", 4),
		}, []code{cBuildObject, cBuildObject, cObjectInsert}, 2},
		{"a statement in between that writes what a fill read", []instr{
			makeObj(L), insertLocal(L, "action", 3),
			{op: cAssignInt, target: 3, a: str("x")},
			insertLocal(L, "resource", 4),
		}, []code{cBuildObject, cAssignInt, cObjectInsert}, 2},
		{"a repeated key ends the build", []instr{
			makeObj(L), insert(L, "a", "1"), insert(L, "a", "2"),
		}, []code{cBuildObject, cObjectInsert}, 2},
	} {
		got := fuse(tc.block)
		if !slices.Equal(ops(got), tc.want) {
			t.Errorf("%s: ops %v, want %v", tc.name, ops(got), tc.want)
			continue
		}
		for _, in := range got {
			if in.op == cBuildObject && in.target == L && len(in.args) != tc.args {
				t.Errorf("%s: build of L has %d operands, want %d", tc.name, len(in.args), tc.args)
			}
		}
	}
}
