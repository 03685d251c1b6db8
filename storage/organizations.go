package storage

import (
	"context"
	"time"
)

// Organization roles. They are plain strings: Clerk's "org:" prefix is not
// part of them.
const (
	OrgRoleOwner  = "owner"
	OrgRoleAdmin  = "admin"
	OrgRoleMember = "member"
)

// Organization is a group of users that may own agents together (table
// kavach_organization).
type Organization struct {
	ID        string
	Name      string
	Slug      string  // unique
	Metadata  []byte  // JSON object, owned by package users
	CreatedBy *string // nil once the creating user is deleted
	CreatedAt time.Time
	UpdatedAt time.Time
}

// OrgMember is one user's membership of an organization (table
// kavach_org_member).
type OrgMember struct {
	OrganizationID string
	UserID         string
	Role           string // OrgRoleOwner, OrgRoleAdmin or OrgRoleMember
	CreatedAt      time.Time
}

// OrgMemberProfile is a membership with the member's profile, as
// ListMembers returns it.
type OrgMemberProfile struct {
	OrgMember
	Email string
	Name  string
	Image *string
}

// UserOrganization is an organization with the role a user has in it, as
// ListByUser returns it.
type UserOrganization struct {
	Organization
	Role string
}

// Organizations stores organizations and their memberships. Memberships
// go with the organization (and with the user); agents of a deleted
// organization keep existing with OrganizationID nil.
type Organizations interface {
	Create(ctx context.Context, o *Organization) error // ErrAlreadyExists on duplicate id or slug
	Get(ctx context.Context, id string) (*Organization, error)
	GetBySlug(ctx context.Context, slug string) (*Organization, error)
	// Update writes Name, Slug, Metadata and UpdatedAt; ErrAlreadyExists
	// when the slug belongs to another organization, ErrNotFound when no
	// such organization.
	Update(ctx context.Context, o *Organization) error
	Delete(ctx context.Context, id string) error
	// Lock takes the organization's row lock until the transaction ends
	// (ErrNotFound when there is no such organization). Changes that check
	// an invariant over several rows of one organization (at least one
	// owner, a member limit, no live agents before a delete) call it first,
	// inside InTx, so they run one after another on PostgreSQL too.
	Lock(ctx context.Context, id string) error
	// ListByUser returns the organizations the user is a member of, with
	// the user's role, by the organization's CreatedAt, ID.
	ListByUser(ctx context.Context, userID string) ([]UserOrganization, error)

	// AddMember inserts m: ErrAlreadyExists when the user is a member
	// already, ErrNotFound when the organization or the user does not
	// exist.
	AddMember(ctx context.Context, m *OrgMember) error
	GetMember(ctx context.Context, orgID, userID string) (*OrgMember, error)
	// ListMembers returns the members with their profiles by CreatedAt,
	// UserID.
	ListMembers(ctx context.Context, orgID string) ([]OrgMemberProfile, error)
	SetMemberRole(ctx context.Context, orgID, userID, role string) error // ErrNotFound when not a member
	RemoveMember(ctx context.Context, orgID, userID string) error        // ErrNotFound when not a member
}
