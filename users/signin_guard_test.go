package users

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// sessionIssuers are the only functions of the module that may issue a
// session. finishSignIn is where every sign-in method ends (and where bans,
// lockout and two-factor are checked); VerifyTwoFactor issues the session
// a pending second factor was waiting for; SignUp signs in an account
// created a moment ago, which cannot have a second factor yet. The rest
// are the helpers they share.
var sessionIssuers = map[string]bool{
	"finishSignIn":       true,
	"VerifyTwoFactor":    true,
	"SignUp":             true,
	"createSession":      true,
	"createSessionExtra": true,
}

// TestSessionsAreIssuedInOnePlace reads the module's Go source and fails
// when a function outside sessionIssuers creates a session: a new sign-in
// method that called createSession (or stored a session row) itself would
// skip the second factor, as better-auth's magic link, OTP, social and
// passkey sign-ins once did.
func TestSessionsAreIssuedInOnePlace(t *testing.T) {
	root := filepath.Join("..")
	fset := token.NewFileSet()
	var offenders []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == "node_modules" || name == "testdata" || (strings.HasPrefix(name, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "storagetest") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				issues := false
				switch sel.Sel.Name {
				case "createSession", "createSessionExtra", "newSession":
					issues = true
				case "Create":
					// tx.Sessions().Create(…)
					if inner, ok := sel.X.(*ast.CallExpr); ok {
						if s, ok := inner.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == "Sessions" {
							issues = true
						}
					}
				}
				if issues && !sessionIssuers[fn.Name.Name] {
					offenders = append(offenders, fset.Position(call.Pos()).String()+" in "+fn.Name.Name)
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(offenders)
	if len(offenders) > 0 {
		t.Fatalf("sessions issued outside finishSignIn (a sign-in method must end in finishSignIn):\n%s", strings.Join(offenders, "\n"))
	}
}
