package users

import (
	"context"
	"fmt"

	"github.com/kavachos/kavach/storage"
)

// waysIn counts the ways the user could still sign in without the account
// row skipAccount and the passkey skipPasskey (either may be ""): a
// password, an account at a configured social provider, a passkey not
// marked as cloned (a marked one is refused for good). Removing the last
// one is refused, so nobody strands themselves; magic links and codes are
// not counted, since mail or texts may not reach them.
func (s *Service) waysIn(ctx context.Context, tx storage.Store, userID, skipAccount, skipPasskey string) (int, error) {
	accts, err := tx.Accounts().ListByUser(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("list accounts: %w", err)
	}
	n := 0
	for _, a := range accts {
		switch {
		case a.ID == skipAccount:
		case a.ProviderID == storage.ProviderCredential:
			if usablePassword(&a) {
				n++
			}
		case s.cfg.Social.Has(providerName(a.ProviderID)):
			n++
		}
	}
	keys, err := tx.Passkeys().ListByUser(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("list passkeys: %w", err)
	}
	for _, k := range keys {
		if k.ID != skipPasskey && !k.CloneWarning {
			n++
		}
	}
	return n, nil
}
