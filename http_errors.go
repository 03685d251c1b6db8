package kavach

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/kavachos/kavach/agents"
	"github.com/kavachos/kavach/internal/httpx"
	"github.com/kavachos/kavach/storage"
	"github.com/kavachos/kavach/trust"
	"github.com/kavachos/kavach/users"
)

// errorResponse maps a domain error to an HTTP status, a stable code and a
// sentence for the client. It is the only place that knows the mapping;
// anything unknown is a 500 whose details stay in the log.
func errorResponse(err error) (status int, code, message string) {
	var (
		decErr    *httpx.DecodeError
		inputErr  *users.InputError
		policyErr *users.PasswordPolicyError
		agentErr  *agents.ValidationError
	)
	switch {
	case errors.As(err, &decErr):
		return decErr.Status, decErr.Code, decErr.Message
	case errors.As(err, &policyErr):
		return http.StatusBadRequest, policyCode(policyErr.Reason), policyErr.Message
	case errors.As(err, &inputErr):
		return http.StatusBadRequest, "INVALID_REQUEST", inputErr.Error()
	case errors.As(err, &agentErr) && errors.Is(err, agents.ErrNotSubset):
		return http.StatusBadRequest, "PERMISSION_NOT_DELEGABLE", agentErr.Error()
	case errors.As(err, &agentErr):
		return http.StatusBadRequest, "INVALID_REQUEST", agentErr.Error()
	case errors.Is(err, agents.ErrAgentNotFound):
		return http.StatusNotFound, "AGENT_NOT_FOUND", "No such agent."
	case errors.Is(err, agents.ErrQuotaExceeded):
		return http.StatusConflict, "AGENT_QUOTA_EXCEEDED", "You have reached the number of agents you may own."
	case errors.Is(err, agents.ErrAgentRevoked):
		return http.StatusConflict, "AGENT_REVOKED", "The agent is revoked."
	case errors.Is(err, agents.ErrAgentSuspended):
		return http.StatusConflict, "AGENT_SUSPENDED", "The agent is suspended."
	case errors.Is(err, agents.ErrAgentExpired):
		return http.StatusConflict, "AGENT_EXPIRED", "The agent has expired."
	case errors.Is(err, agents.ErrDelegationDepth):
		return http.StatusConflict, "DELEGATION_DEPTH_EXCEEDED", "The delegation chain is as deep as this server allows."
	case errors.Is(err, agents.ErrApprovalNotFound):
		return http.StatusNotFound, "APPROVAL_NOT_FOUND", "No such approval request."
	case errors.Is(err, agents.ErrApprovalNotPending):
		return http.StatusConflict, "APPROVAL_NOT_PENDING", "The approval request has already been decided."
	case errors.Is(err, agents.ErrApprovalExpired):
		return http.StatusConflict, "APPROVAL_EXPIRED", "The approval request has expired; the agent must ask again."
	case errors.Is(err, agents.ErrBudgetNotFound):
		return http.StatusNotFound, "BUDGET_NOT_FOUND", "No such budget."
	case errors.Is(err, agents.ErrBudgetExists):
		return http.StatusConflict, "BUDGET_EXISTS", "The scope already has a budget with this metric, period and action; delete it first."
	case errors.Is(err, trust.ErrPolicyInvalid):
		return http.StatusBadRequest, "INVALID_POLICY", err.Error()
	case errors.Is(err, trust.ErrPolicyNotFound):
		return http.StatusNotFound, "POLICY_NOT_FOUND", "No such trust policy."
	case errors.Is(err, trust.ErrPolicyConflict):
		return http.StatusConflict, "VERSION_CONFLICT", err.Error() + "; read it again and retry."
	case errors.Is(err, trust.ErrPolicyReadOnly):
		return http.StatusForbidden, "FORBIDDEN", "Only server admins may change this trust policy: it is the platform's."
	case errors.Is(err, trust.ErrTooManyPolicies):
		return http.StatusConflict, "TOO_MANY_POLICIES", err.Error() + "."
	case errors.Is(err, agents.ErrUserNotFound):
		return http.StatusNotFound, "USER_NOT_FOUND", "No such user."
	case errors.Is(err, storage.ErrInvalidValue):
		return http.StatusBadRequest, "INVALID_REQUEST", "The request contains text that is not valid UTF-8 or contains control characters."
	case errors.Is(err, users.ErrInvalidCredentials):
		return http.StatusUnauthorized, "INVALID_CREDENTIALS", "Invalid email or password."
	case errors.Is(err, users.ErrUnauthenticated):
		return http.StatusUnauthorized, "UNAUTHENTICATED", "Sign in to continue."
	case errors.Is(err, users.ErrUserExists):
		return http.StatusConflict, "USER_ALREADY_EXISTS", "A user with this email already exists."
	case errors.Is(err, users.ErrTooManyAttempts):
		return http.StatusTooManyRequests, "TOO_MANY_ATTEMPTS", "Too many failed attempts. Try again later or reset your password."
	case errors.Is(err, users.ErrNotBanned):
		return http.StatusNotFound, "NOT_BANNED", "The user is not banned."
	case errors.As(err, new(*users.TextBudgetError)):
		return http.StatusTooManyRequests, "RATE_LIMITED", "Too many requests. Try again later."
	case errors.Is(err, users.ErrUserBanned):
		msg := "This account is banned"
		var b *users.BannedError
		if errors.As(err, &b) {
			if b.Reason != "" {
				msg += ": " + b.Reason
			}
			if b.Until != nil {
				msg += " (until " + b.Until.UTC().Format(time.RFC3339) + ")"
			}
		}
		return http.StatusForbidden, "USER_BANNED", msg + "."
	case errors.Is(err, users.ErrInvalidCode):
		return http.StatusBadRequest, "INVALID_CODE", "The code is invalid, expired or already used."
	case errors.Is(err, users.ErrTwoFactorExpired):
		return http.StatusUnauthorized, "TWO_FACTOR_EXPIRED", "The sign-in expired or had too many wrong codes. Sign in again."
	case errors.Is(err, users.ErrTwoFactorEnabled):
		return http.StatusConflict, "TWO_FACTOR_ENABLED", "Two-factor authentication is already on. Disable it first to enrol again."
	case errors.Is(err, users.ErrTwoFactorNotEnabled):
		return http.StatusConflict, "TWO_FACTOR_NOT_ENABLED", "Two-factor authentication is not on."
	case errors.Is(err, users.ErrReauthRequired):
		return http.StatusForbidden, "REAUTHENTICATION_REQUIRED", "Sign in again (within the last 10 minutes) to change this."
	case errors.Is(err, users.ErrPasskeyInvalid):
		return http.StatusBadRequest, "PASSKEY_INVALID", "The passkey could not be verified. Try again."
	case errors.Is(err, users.ErrPasskeyChallenge):
		return http.StatusBadRequest, "CHALLENGE_EXPIRED", "The passkey request expired or was already used. Start again."
	case errors.Is(err, users.ErrPasskeyCloned):
		return http.StatusForbidden, "PASSKEY_CLONED", "This passkey may have been copied, so it can no longer sign in. Sign in another way, then delete it and register it again."
	case errors.Is(err, users.ErrPasskeyNotFound):
		return http.StatusNotFound, "PASSKEY_NOT_FOUND", "No such passkey."
	case errors.Is(err, users.ErrPasskeyExists):
		return http.StatusConflict, "PASSKEY_EXISTS", "This passkey is already registered."
	case errors.Is(err, users.ErrPasskeyLimit):
		return http.StatusConflict, "PASSKEY_LIMIT_REACHED", "You have registered as many passkeys as this server allows; delete one first."
	case errors.Is(err, users.ErrPasskeysDisabled):
		return http.StatusNotFound, "PASSKEYS_DISABLED", "Passkeys are not configured on this server."
	case errors.Is(err, users.ErrInvalidToken):
		return http.StatusBadRequest, "INVALID_TOKEN", "The link is invalid, expired or already used."
	case errors.Is(err, users.ErrPhoneNotEnabled):
		return http.StatusNotFound, "PHONE_NOT_ENABLED", "Phone sign-in is not enabled on this server."
	case errors.Is(err, users.ErrPhoneInUse):
		return http.StatusConflict, "PHONE_IN_USE", "This phone number belongs to another account."
	case errors.Is(err, users.ErrSessionNotFound):
		return http.StatusNotFound, "SESSION_NOT_FOUND", "No such session."
	case errors.Is(err, users.ErrOrganizationNotFound):
		return http.StatusNotFound, "ORGANIZATION_NOT_FOUND", "No such organization."
	case errors.Is(err, users.ErrOrgForbidden):
		return http.StatusForbidden, "FORBIDDEN", "Your role in the organization does not allow this."
	case errors.Is(err, users.ErrOrgSlugTaken):
		return http.StatusConflict, "ORGANIZATION_SLUG_TAKEN", "Another organization has this slug."
	case errors.Is(err, users.ErrAlreadyMember):
		return http.StatusConflict, "ALREADY_MEMBER", "The user is already a member of the organization."
	case errors.Is(err, users.ErrMemberNotFound):
		return http.StatusNotFound, "MEMBER_NOT_FOUND", "No such member of the organization."
	case errors.Is(err, users.ErrLastOwner):
		return http.StatusConflict, "LAST_OWNER", "An organization needs at least one owner: add another owner first."
	case errors.Is(err, users.ErrOrgHasAgents):
		return http.StatusConflict, "ORGANIZATION_HAS_AGENTS", "Revoke the organization's agents before deleting it."
	case errors.Is(err, users.ErrOrgMemberLimit):
		return http.StatusConflict, "MEMBER_LIMIT_REACHED", "The organization has reached its member limit."
	case errors.Is(err, users.ErrOrgLimitReached):
		return http.StatusConflict, "ORGANIZATION_LIMIT_REACHED", "The user belongs to the maximum number of organizations."
	case errors.Is(err, users.ErrUserNotFound):
		return http.StatusNotFound, "USER_NOT_FOUND", "No such user."
	case errors.Is(err, users.ErrEmailNotVerified):
		return http.StatusForbidden, "EMAIL_NOT_VERIFIED", "Verify your email address before signing in."
	case errors.Is(err, users.ErrUnknownProvider):
		return http.StatusNotFound, "PROVIDER_NOT_FOUND", "No such sign-in provider."
	case errors.Is(err, users.ErrInvalidState):
		return http.StatusBadRequest, "INVALID_STATE", "The sign-in state is invalid, expired or already used, or this browser did not start it. Start again."
	case errors.Is(err, users.ErrProviderDenied):
		return http.StatusBadRequest, "OAUTH_PROVIDER_ERROR", "The provider did not authorize the sign-in."
	case errors.Is(err, users.ErrInvalidIDToken):
		return http.StatusBadRequest, "INVALID_ID_TOKEN", "The provider's ID token did not verify."
	case errors.Is(err, users.ErrProviderFailed):
		return http.StatusBadGateway, "PROVIDER_ERROR", "The provider could not be reached or refused the sign-in."
	case errors.Is(err, users.ErrProviderNoEmail):
		return http.StatusBadRequest, "PROVIDER_EMAIL_MISSING", "The provider did not share an email address."
	case errors.Is(err, users.ErrLinkSessionChanged):
		return http.StatusForbidden, "LINK_SESSION_CHANGED", "The link was started by another sign-in in this browser. Sign in and start it again."
	case errors.Is(err, users.ErrAccountNotLinked):
		return http.StatusConflict, "ACCOUNT_NOT_LINKED", "An account with this email exists. Sign in to it, then link this provider."
	case errors.Is(err, users.ErrAccountAlreadyLinked):
		return http.StatusConflict, "ACCOUNT_ALREADY_LINKED", "This provider account is linked to another user."
	case errors.Is(err, users.ErrLastAccount):
		return http.StatusConflict, "LAST_ACCOUNT", "This is the last way to sign in to the account; add a password, a passkey or another provider first."
	case errors.Is(err, users.ErrAccountNotFound):
		return http.StatusNotFound, "ACCOUNT_NOT_FOUND", "No such linked account."
	case errors.Is(err, users.ErrHasherBusy), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "SERVICE_BUSY", "The server is busy. Try again shortly."
	default:
		return http.StatusInternalServerError, "INTERNAL_ERROR", "Something went wrong on our side."
	}
}

func policyCode(reason string) string {
	switch reason {
	case "too_short":
		return "PASSWORD_TOO_SHORT"
	case "too_long":
		return "PASSWORD_TOO_LONG"
	case "common":
		return "PASSWORD_TOO_COMMON"
	case "similar_to_email":
		return "PASSWORD_TOO_SIMILAR"
	default:
		return "PASSWORD_POLICY"
	}
}

// fail writes err as an envelope, logging only what is ours to fix.
func (k *Kavach) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := errorResponse(err)
	if status >= 500 && !errors.Is(err, context.Canceled) {
		k.cfg.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	var locked *users.LockedError
	if errors.As(err, &locked) {
		setRetryAfter(w, locked.Until.Sub(k.cfg.Now()))
	}
	var budget *users.TextBudgetError
	if errors.As(err, &budget) {
		setRetryAfter(w, budget.RetryAfter)
	}
	httpx.WriteError(w, status, code, msg)
}
