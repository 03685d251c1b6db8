package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/kavachos/kavach/internal/auditchain"
)

// cmdAudit: `kavach audit verify` recomputes the audit log's hash chain
// and names the first record that was edited, deleted or reordered.
func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("audit: want verify")
	}
	store, err := openStore(ctx, "audit verify", args[1:], stderr, getenv)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		return err
	}
	n, err := auditchain.VerifyLog(ctx, store.Audit())
	var brk *auditchain.BreakError
	if errors.As(err, &brk) {
		return fmt.Errorf("audit log BROKEN after %d good records: %v", n, err)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "audit log intact: %d records verified\n", n)
	return err
}
