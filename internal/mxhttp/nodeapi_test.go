package mxhttp

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/node"
)

// *node.Node is what app passes to NewRouter.
var _ Node = (*node.Node)(nil)

// TestEdgeHoldsNoNode checks, on the package's source, that the HTTP edge
// names *node.Node nowhere: it reaches the node only through Node, so what
// it may call is that interface's two methods.
func TestEdgeHoldsNoNode(t *testing.T) {
	const nodePkg = "github.com/edgenode/edgenode/node"
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		local := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == nodePkg {
				local = path.Base(p)
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		if local == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Node" {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == local {
				t.Errorf("%s names %s.Node: reach the node through the Node interface (nodeapi.go)", fset.Position(sel.Pos()), local)
			}
			return true
		})
	}
}
