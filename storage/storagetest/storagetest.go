package storagetest

import (
	"testing"

	"github.com/kavachos/kavach/storage"
)

// test is one conformance case. It gets a fresh, migrated store.
type test struct {
	name string
	run  func(t *testing.T, s storage.Store)
}

// Run runs the conformance suite. open must return a fresh, migrated store
// for each call and arrange for it to be closed when t ends (the Open of a
// Driver does). Subtests are named Group/Case, e.g. Race/Claim, so one can
// be selected with -run.
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Users", userTests},
		{"Accounts", accountTests},
		{"Sessions", sessionTests},
		{"Verifications", verificationTests},
		{"LoginAttempts", loginAttemptTests},
		{"Events", eventTests},
		{"OAuthClients", oauthClientTests},
		{"OAuthTokens", oauthTokenTests},
		{"OAuthConsents", oauthConsentTests},
		{"SigningKeys", signingKeyTests},
		{"Agents", agentTests},
		{"AgentCredentials", agentCredentialTests},
		{"UserGrants", userGrantTests},
		{"TrustStates", trustStateTests},
		{"TrustPolicies", trustPolicyTests},
		{"TrustFindings", trustFindingTests},
		{"Organizations", organizationTests},
		{"Approvals", approvalTests},
		{"Audit", auditTests},
		{"AuditTamper", auditTamperTests},
		{"Budgets", budgetTests},
		{"Usage", usageTests},
		{"Challenges", challengeTests},
		{"TwoFactors", twoFactorTests},
		{"Passkeys", passkeyTests},
		{"Bans", banTests},
		{"InvalidValues", invalidValueTests},
		{"Tx", txTests},
		{"Schema", schemaTests},
		{"Race", raceTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
			}
		})
	}
}
