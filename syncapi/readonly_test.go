package syncapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
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
	"SharesRoom": true, "UnreadCounts": true, "ThreadUnreadCounts": true, "StickyEvents": true,
	"StickyTTLs": true, "RoomsWithLiveSticky": true, "SearchRoomEvents": true,
	// Relations (node/relations): pages and bundled aggregations.
	"RelationsPage": true, "ThreadsPage": true, "Bundle": true, "RelatedBy": true,
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

// readerImports are the project packages the sync API may import, each with
// the name of its type that would hand out writers ("" for none): the sync
// API uses node/core's, node/e2ee's, node/relations' and node/search's types
// for what the reads return (and search's tokenizer), and may name none of
// node.Node, core.Node, e2ee.E2EE, relations.Relations and search.Search.
var readerImports = map[string]string{
	"github.com/edgenode/edgenode/node":            "Node",
	"github.com/edgenode/edgenode/node/core":       "Node",
	"github.com/edgenode/edgenode/node/e2ee":       "E2EE",
	"github.com/edgenode/edgenode/node/relations":  "Relations",
	"github.com/edgenode/edgenode/node/search":     "Search",
	"github.com/edgenode/edgenode/kv":              "",
	"github.com/edgenode/edgenode/internal/mxhttp": "",
}

// TestSyncAPIReachesOnlyReadMethods checks, on the package's source, that
// the sync API can reach the node only through interfaces it declares here,
// and that those interfaces hold no method of *node.Node outside
// readerAllowed: so it cannot call SendEvent, SetAccountData or any other
// writer of the room core, even through a type assertion.
func TestSyncAPIReachesOnlyReadMethods(t *testing.T) {
	nodeMethods := nodeMethods()
	for name := range readerAllowed {
		if !nodeMethods[name] {
			t.Errorf("readerAllowed names %s, which *node.Node does not have: remove it", name)
		}
	}

	fset := token.NewFileSet()
	files := parseDir(t, fset, ".")
	declared := 0
	for path, f := range files {
		refused := map[string]string{} // import name -> its type that hands out writers
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			handle, allowed := readerImports[p]
			if strings.HasPrefix(p, "github.com/edgenode/edgenode/") && !allowed {
				t.Errorf("%s imports %s: the sync API may import only %v", path, p, keys(readerImports))
			}
			if handle != "" {
				refused[importName(imp, p[strings.LastIndex(p, "/")+1:])] = handle
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok && refused[id.Name] != "" && x.Sel.Name == refused[id.Name] {
					t.Errorf("%s: names %s.%s; reach the node through Reader (nodeapi.go)", fset.Position(x.Pos()), id.Name, x.Sel.Name)
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

// nodeMethods is the names of the methods of *node.Node, its room core's
// included: the whole surface a *node.Node would hand the sync API.
func nodeMethods() map[string]bool {
	out := map[string]bool{}
	typ := reflect.TypeOf((*node.Node)(nil))
	for i := range typ.NumMethod() {
		out[typ.Method(i).Name] = true
	}
	return out
}

// importName is the name a file uses for an import.
func importName(imp *ast.ImportSpec, def string) string {
	if imp.Name != nil {
		return imp.Name.Name
	}
	return def
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

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
