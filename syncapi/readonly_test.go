package syncapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/node"
)

// *node.Node is what app passes to Register.
var _ Reader = (*node.Node)(nil)

// readerAllowed are the methods of *node.Node the sync API may call: reads,
// and the four sync-session calls that change no room state (syncSession in
// nodeapi.go says why each is there). Adding a name here is a design
// decision: the sync API is a reader and never writes room state.
var readerAllowed = map[string]bool{
	// Room events, state and memberships.
	"StreamPosition": true, "StreamEventsSince": true, "Event": true, "Events": true,
	"RoomEvents": true, "CurrentState": true, "CurrentStateEvent": true,
	"RoomStateAt": true, "StateAfterEvent": true, "Membership": true,
	"Memberships": true, "OutOfBandRoom": true, "RoomsByBump": true,
	"SharesRoom": true, "UnreadCounts": true, "StickyEvents": true,
	"StickyTTLs": true, "RoomsWithLiveSticky": true,
	// The other streams.
	"AccountData": true, "AccountDataPosition": true, "AccountDataSince": true,
	"Tags": true, "ReceiptPosition": true, "ReceiptsSince": true, "Typing": true,
	"TypingPosition": true, "PresencePosition": true, "PresenceSince": true,
	"ToDevicePosition": true, "ToDeviceSince": true, "DeviceListPosition": true,
	"DeviceListChangesSince": true, "OneTimeKeyCounts": true,
	"UnusedFallbackKeyTypes": true, "Filter": true,
	// Sync-session calls that are not room-state writes.
	"BeginSync": true, "Listen": true, "AckToDevice": true, "SaveFilter": true,
}

// readerImports are the project packages the sync API may import: none of
// them hands out a *node.Node or a way to write room state.
var readerImports = map[string]bool{
	"github.com/edgenode/edgenode/node":            true,
	"github.com/edgenode/edgenode/kv":              true,
	"github.com/edgenode/edgenode/internal/mxhttp": true,
}

// TestSyncAPIReachesOnlyReadMethods checks, on the package's source, that
// the sync API can reach the node only through interfaces it declares here,
// and that those interfaces hold no method of *node.Node outside
// readerAllowed: so it cannot call SendEvent, SetAccountData or any other
// writer of the room core, even through a type assertion.
func TestSyncAPIReachesOnlyReadMethods(t *testing.T) {
	nodeMethods := methodsOf(t, filepath.Join("..", "node"), "Node")
	for name := range readerAllowed {
		if !nodeMethods[name] {
			t.Errorf("readerAllowed names %s, which *node.Node does not have: remove it", name)
		}
	}

	fset := token.NewFileSet()
	files := parseDir(t, fset, ".")
	declared := 0
	for path, f := range files {
		nodeName := ""
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/edgenode/edgenode/") && !readerImports[p] {
				t.Errorf("%s imports %s: the sync API may import only %v", path, p, keys(readerImports))
			}
			if p == "github.com/edgenode/edgenode/node" {
				nodeName = "node"
				if imp.Name != nil {
					nodeName = imp.Name.Name
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok && nodeName != "" && id.Name == nodeName && x.Sel.Name == "Node" {
					t.Errorf("%s: names node.Node; reach the node through Reader (nodeapi.go)", fset.Position(x.Pos()))
				}
			case *ast.InterfaceType:
				for _, m := range x.Methods.List {
					if len(m.Names) == 0 {
						if _, local := m.Type.(*ast.Ident); !local {
							t.Errorf("%s: an interface embeds %s from another package; declare its methods here", fset.Position(m.Pos()), exprString(m.Type))
						}
						continue
					}
					for _, name := range m.Names {
						declared++
						if nodeMethods[name.Name] && !readerAllowed[name.Name] {
							t.Errorf("%s: interface method %s is a method of *node.Node the sync API may not call (a reader never writes room state)", fset.Position(name.Pos()), name.Name)
						}
					}
				}
			}
			return true
		})
	}
	if declared == 0 {
		t.Fatal("found no interface methods in syncapi: the check looked at the wrong files")
	}
}

// parseDir parses the non-test Go files of dir.
func parseDir(t *testing.T, fset *token.FileSet, dir string) map[string]*ast.File {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*ast.File{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = f
	}
	if len(out) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	return out
}

// methodsOf is the names of the methods declared in dir on typ or *typ.
func methodsOf(t *testing.T, dir, typ string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, f := range parseDir(t, token.NewFileSet(), dir) {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 {
				continue
			}
			recv := fd.Recv.List[0].Type
			if st, ok := recv.(*ast.StarExpr); ok {
				recv = st.X
			}
			if id, ok := recv.(*ast.Ident); ok && id.Name == typ {
				out[fd.Name.Name] = true
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no methods of %s in %s", typ, dir)
	}
	return out
}

func exprString(e ast.Expr) string {
	if s, ok := e.(*ast.SelectorExpr); ok {
		return exprString(s.X) + "." + s.Sel.Name
	}
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return "a type"
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
