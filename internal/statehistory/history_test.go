package statehistory_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"unifi/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// stateWriters is every statement in the repository's Go code (tests aside)
// that may change transactions.state: "file function: kind", once per
// statement. Each is recorded in transaction_state_changes by the
// statement-level triggers of migrations 00130 and 00330 (no statement can opt out),
// except those of cmd/unifi gen, which set unifi.bulk_load and write the
// history themselves. None deletes: transactions are the history, and their
// HTTP Requests, log lines and Stage name them without a foreign key
// (migration 00310), relying on it.
var stateWriters = []string{
	"bench/engine.go (*engineBench).backlog: INSERT INTO transactions",
	"bench/engine.go (*engineBench).delivery: UPDATE transactions SET state",
	"bench/latency.go (*engineBench).enqueueLoad: INSERT INTO transactions",
	"bench/latency.go (*engineBench).latency: UPDATE transactions SET state",
	"cmd/unifi/gen.go genSQL: INSERT INTO transactions",
	"internal/fixture/fixture.go Transaction: GORM Create on a Transaction",
	"models/inbound/inboundsql/group.go GroupWrite: INSERT INTO transactions",
	"models/inbound/inboundsql/message.go WriteTransaction: INSERT INTO transactions",
	"models/queue/queue.go Transition: GORM Updates on a Transaction",
	"models/queue/release.go releaseSQL: UPDATE transactions SET state",
	"models/store/ticket_store.go outboundSQL: INSERT INTO transactions",
	"worker/enginedb/engine_store.go moveTransactionsSQL: UPDATE transactions SET state",
	"worker/enginedb/engine_store.go sweepReceiptsSQL: UPDATE transactions SET state",
}

// TestStateChangesRecorded lists the statements that change a transaction's
// state and fails on one that is not in stateWriters.
func TestStateChangesRecorded(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	got := scanStateWriters(t, root)
	want := slices.Clone(stateWriters)
	slices.Sort(want)
	for _, w := range diff(got, want) {
		t.Errorf("new statement that changes transactions.state: %q\n"+
			"\tMake sure its state changes are recorded in the history (transaction_state_changes: the triggers\n"+
			"\tof migrations 00130 and 00330 do it for every plain INSERT, UPDATE and DELETE on transactions; nothing may switch\n"+
			"\tthem off), then add it to stateWriters in internal/statehistory/history_test.go.", w)
	}
	for _, w := range diff(want, got) {
		t.Errorf("stateWriters lists %q, which the scan no longer finds: remove it (or fix the scan)", w)
	}
}

// diff returns the elements of a (sorted) not matched in b (sorted), counting
// repeats.
func diff(a, b []string) []string {
	var out []string
	i := 0
	for _, x := range a {
		for i < len(b) && b[i] < x {
			i++
		}
		if i < len(b) && b[i] == x {
			i++
			continue
		}
		out = append(out, x)
	}
	return out
}

// repoRoot is the module's root: two folders above this test file.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var (
	sqlUpdate = regexp.MustCompile(`(?is)\bUPDATE\s+(?:ONLY\s+)?transactions\b(?:\s+(?:AS\s+)?([a-z_][a-z0-9_]*))?\s+SET\b(.*?)(?:\bWHERE\b|\bRETURNING\b|$)`)
	sqlInsert = regexp.MustCompile(`(?is)\bINSERT\s+INTO\s+(?:ONLY\s+)?transactions\b`)
	sqlDelete = regexp.MustCompile(`(?is)\bDELETE\s+FROM\s+(?:ONLY\s+)?transactions\b`)
	sqlTrunc  = regexp.MustCompile(`(?is)\bTRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?(?:[a-z_][a-z0-9_]*\s*,\s*)*transactions\b`)
	// gormWrites are the GORM methods that write rows.
	gormWrites = map[string]bool{"Create": true, "CreateInBatches": true, "Save": true, "FirstOrCreate": true,
		"Delete": true, "Update": true, "Updates": true, "UpdateColumn": true, "UpdateColumns": true}
)

// sqlKinds returns one kind per statement in sql that may change a
// transaction's state.
func sqlKinds(sql string) []string {
	var out []string
	for _, m := range sqlUpdate.FindAllStringSubmatch(sql, -1) {
		col := `state`
		if m[1] != "" {
			col = `(?:` + regexp.QuoteMeta(m[1]) + `\.)?state`
		}
		if regexp.MustCompile(`(?i)(?:^|[\s,])` + col + `\s*=`).MatchString(m[2]) {
			out = append(out, "UPDATE transactions SET state")
		}
	}
	for range sqlInsert.FindAllString(sql, -1) {
		out = append(out, "INSERT INTO transactions")
	}
	for range sqlDelete.FindAllString(sql, -1) {
		out = append(out, "DELETE FROM transactions")
	}
	for range sqlTrunc.FindAllString(sql, -1) {
		out = append(out, "TRUNCATE transactions")
	}
	return out
}

// scanStateWriters parses every Go file of the repository but tests and
// returns the statements that may change transactions.state, sorted.
func scanStateWriters(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "vendor" || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, w := range fileStateWriters(f) {
			out = append(out, filepath.ToSlash(rel)+" "+w)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan the repository: %v", err)
	}
	slices.Sort(out)
	return out
}

// fileStateWriters returns "function: kind" for each statement of f that may
// change transactions.state.
func fileStateWriters(f *ast.File) []string {
	var out []string
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			name := d.Name.Name
			if d.Recv != nil && len(d.Recv.List) == 1 {
				name = "(" + typeString(d.Recv.List[0].Type) + ")." + name
			}
			for _, k := range nodeStateWriters(d, txVars(d)) {
				out = append(out, name+": "+k)
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				vs, ok := spec.(*ast.ValueSpec)
				if !ok {
					continue
				}
				var names []string
				for _, n := range vs.Names {
					names = append(names, n.Name)
				}
				for _, k := range nodeStateWriters(vs, txVars(vs)) {
					out = append(out, strings.Join(names, ",")+": "+k)
				}
			}
		}
	}
	return out
}

func typeString(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return "*" + typeString(x.X)
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return typeString(x.X) + "." + x.Sel.Name
	case *ast.IndexExpr:
		return typeString(x.X)
	case *ast.IndexListExpr:
		return typeString(x.X)
	case *ast.ArrayType:
		return "[]" + typeString(x.Elt)
	}
	return "?"
}

// isTxType says whether e is models.Transaction, a pointer to it, or a slice
// of either.
func isTxType(e ast.Expr) bool {
	switch typeString(e) {
	case "models.Transaction", "*models.Transaction", "[]models.Transaction", "[]*models.Transaction":
		return true
	}
	return false
}

// isTxValue says whether e is a models.Transaction value built in place
// (models.Transaction{...}, &models.Transaction{...}) or a variable in vars.
func isTxValue(e ast.Expr, vars map[string]bool) bool {
	switch x := e.(type) {
	case *ast.UnaryExpr:
		return x.Op == token.AND && isTxValue(x.X, vars)
	case *ast.ParenExpr:
		return isTxValue(x.X, vars)
	case *ast.CompositeLit:
		return x.Type != nil && isTxType(x.Type)
	case *ast.Ident:
		return vars[x.Name]
	case *ast.CallExpr: // new(models.Transaction)
		if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "new" && len(x.Args) == 1 {
			return isTxType(x.Args[0])
		}
	}
	return false
}

// txVars returns the names declared in n with a transaction type or value
// (by syntax: parameters, var declarations, := of a composite literal).
func txVars(n ast.Node) map[string]bool {
	vars := map[string]bool{}
	ast.Inspect(n, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.Field:
			if isTxType(x.Type) {
				for _, id := range x.Names {
					vars[id.Name] = true
				}
			}
		case *ast.ValueSpec:
			for i, id := range x.Names {
				if (x.Type != nil && isTxType(x.Type)) || (i < len(x.Values) && isTxValue(x.Values[i], vars)) {
					vars[id.Name] = true
				}
			}
		case *ast.AssignStmt:
			if len(x.Lhs) == len(x.Rhs) {
				for i, l := range x.Lhs {
					if id, ok := l.(*ast.Ident); ok && isTxValue(x.Rhs[i], vars) {
						vars[id.Name] = true
					}
				}
			}
		}
		return true
	})
	return vars
}

// nodeStateWriters finds, in n, the SQL texts (string literals and their
// concatenations) and the GORM calls that may change transactions.state.
func nodeStateWriters(n ast.Node, vars map[string]bool) []string {
	var out []string
	ast.Inspect(n, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.BinaryExpr:
			if x.Op == token.ADD {
				if s, ok := concat(x); ok {
					out = append(out, sqlKinds(s)...)
					return false
				}
			}
		case *ast.BasicLit:
			if x.Kind == token.STRING {
				s, err := strconv.Unquote(x.Value)
				if err == nil {
					out = append(out, sqlKinds(s)...)
				}
			}
		case *ast.CallExpr:
			sel, ok := x.Fun.(*ast.SelectorExpr)
			if !ok || !gormWrites[sel.Sel.Name] {
				return true
			}
			if (len(x.Args) > 0 && isTxValue(x.Args[0], vars)) || chainOnTransactions(sel.X, vars) {
				out = append(out, "GORM "+sel.Sel.Name+" on a Transaction")
			}
		}
		return true
	})
	return out
}

// concat joins the string literals of a + b + ..., other operands as "?". It
// reports false when no operand is a string literal.
func concat(e ast.Expr) (string, bool) {
	switch x := e.(type) {
	case *ast.BinaryExpr:
		if x.Op != token.ADD {
			return "?", false
		}
		a, okA := concat(x.X)
		b, okB := concat(x.Y)
		return a + b, okA || okB
	case *ast.BasicLit:
		if x.Kind == token.STRING {
			if s, err := strconv.Unquote(x.Value); err == nil {
				return s, true
			}
		}
	case *ast.ParenExpr:
		return concat(x.X)
	}
	return " ? ", false
}

// chainOnTransactions says whether a GORM chain (db.Model(...).Where(...))
// works on transactions: Model of a transaction value or Table("transactions").
func chainOnTransactions(e ast.Expr, vars map[string]bool) bool {
	for {
		call, ok := e.(*ast.CallExpr)
		if !ok {
			return false
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return false
		}
		switch sel.Sel.Name {
		case "Model":
			if len(call.Args) == 1 && isTxValue(call.Args[0], vars) {
				return true
			}
		case "Table":
			if len(call.Args) > 0 {
				if lit, ok := call.Args[0].(*ast.BasicLit); ok {
					if s, err := strconv.Unquote(lit.Value); err == nil && firstWord(s) == "transactions" {
						return true
					}
				}
			}
		}
		e = sel.X
	}
}

// firstWord returns the first word of s: the table of Table("transactions t").
func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}
