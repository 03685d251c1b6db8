package kavach

import (
	"fmt"
	"testing"

	"github.com/kavachos/kavach/users"
)

func TestOrganizationErrorResponses(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("x: %w", users.ErrOrganizationNotFound), 404, "ORGANIZATION_NOT_FOUND"},
		{users.ErrOrgForbidden, 403, "FORBIDDEN"},
		{users.ErrOrgSlugTaken, 409, "ORGANIZATION_SLUG_TAKEN"},
		{users.ErrAlreadyMember, 409, "ALREADY_MEMBER"},
		{users.ErrMemberNotFound, 404, "MEMBER_NOT_FOUND"},
		{users.ErrLastOwner, 409, "LAST_OWNER"},
		{users.ErrOrgHasAgents, 409, "ORGANIZATION_HAS_AGENTS"},
		{users.ErrOrgMemberLimit, 409, "MEMBER_LIMIT_REACHED"},
		{users.ErrOrgLimitReached, 409, "ORGANIZATION_LIMIT_REACHED"},
		{&users.InputError{Field: "slug", Message: "bad"}, 400, "INVALID_REQUEST"},
	}
	for _, c := range cases {
		status, code, msg := errorResponse(c.err)
		if status != c.status || code != c.code || msg == "" {
			t.Errorf("errorResponse(%v) = %d %s %q, want %d %s", c.err, status, code, msg, c.status, c.code)
		}
	}
}
