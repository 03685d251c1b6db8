package storagetest

import (
	"errors"
	"testing"

	"github.com/kavachos/kavach/internal/auditchain"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/storage/internal/sqlstore"
	"github.com/kavachos/kavach/storage/postgres"
	"github.com/kavachos/kavach/storage/sqlite"
)

// auditTamperTests change stored audit rows behind the store's back, with
// raw SQL, as someone with database access would, and check that
// verification reports the first record that no longer holds.
var auditTamperTests = func() []test {
	cases := []struct {
		name    string
		tamper  func(t *testing.T, s storage.Store)
		seq     int64
		problem auditchain.Problem
	}{
		{"EditedField", func(t *testing.T, s storage.Store) {
			rawExec(t, s, `UPDATE kavach_audit SET result = 'deny' WHERE seq = 4`)
		}, 4, auditchain.ProblemEdited},
		{"EditedChain", func(t *testing.T, s storage.Store) {
			rawExec(t, s, `UPDATE kavach_audit SET chain = '["usr_1"]' WHERE seq = 4`)
		}, 4, auditchain.ProblemEdited},
		{"EditedAndRehashed", func(t *testing.T, s storage.Store) {
			var r storage.AuditRecord
			err := s.Audit().Scan(t.Context(), 4, func(x storage.AuditRecord) error {
				r = x
				return errStopScan
			})
			if err != errStopScan {
				t.Fatalf("scan: %v", err)
			}
			r.Result = storage.AuditDeny
			rawExec(t, s, `UPDATE kavach_audit SET result = ?, hash = ? WHERE seq = 4`, r.Result, auditchain.Hash(r.PrevHash, &r))
		}, 5, auditchain.ProblemLink},
		{"DeletedFirst", func(t *testing.T, s storage.Store) {
			rawExec(t, s, `DELETE FROM kavach_audit WHERE seq = 1`)
		}, 1, auditchain.ProblemMissing},
		{"DeletedMiddle", func(t *testing.T, s storage.Store) {
			rawExec(t, s, `DELETE FROM kavach_audit WHERE seq = 4`)
		}, 4, auditchain.ProblemMissing},
		{"DeletedLast", func(t *testing.T, s storage.Store) {
			rawExec(t, s, `DELETE FROM kavach_audit WHERE seq = 10`)
		}, 10, auditchain.ProblemTruncated},
		{"Reordered", func(t *testing.T, s storage.Store) {
			rawExec(t, s, `UPDATE kavach_audit SET seq = -4 WHERE seq = 4`)
			rawExec(t, s, `UPDATE kavach_audit SET seq = 4 WHERE seq = 5`)
			rawExec(t, s, `UPDATE kavach_audit SET seq = 5 WHERE seq = -4`)
		}, 4, auditchain.ProblemLink},
		{"AnchorEdited", func(t *testing.T, s storage.Store) {
			rawExec(t, s, `UPDATE kavach_audit_anchor SET seq = 2`)
		}, 3, auditchain.ProblemLink},
	}
	out := make([]test, len(cases))
	for i, tc := range cases {
		out[i] = test{tc.name, func(t *testing.T, s storage.Store) {
			appendAuditN(t, s, 10, 3, nil)
			wantVerified(t, s, 10)
			tc.tamper(t, s)
			_, err := auditchain.VerifyLog(t.Context(), s.Audit())
			var brk *auditchain.BreakError
			if !errors.As(err, &brk) {
				t.Fatalf("verify after tampering = %v, want a break", err)
			}
			if brk.Seq != tc.seq || brk.Problem != tc.problem {
				t.Fatalf("verify: broken at seq %d (%s), want seq %d (%s)", brk.Seq, brk.Problem, tc.seq, tc.problem)
			}
		}}
	}
	return out
}()

var errStopScan = errors.New("storagetest: stop scan")

// rawExec runs SQL on the store's database directly, bypassing the store.
// query uses ? placeholders.
func rawExec(t *testing.T, s storage.Store, query string, args ...any) {
	t.Helper()
	var err error
	switch db := s.(type) {
	case *sqlite.Store:
		_, err = db.DB().ExecContext(t.Context(), query, args...)
	case *postgres.Store:
		_, err = db.Pool().Exec(t.Context(), sqlstore.Rebind(query), args...)
	default:
		t.Skipf("no raw SQL access to a %T", s)
	}
	must(t, "raw SQL", err)
}
