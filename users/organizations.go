package users

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kavachos/kavach/internal/id"
	"github.com/kavachos/kavach/storage"
)

// Organizations are groups of users that own agents together (the model of
// Clerk's Organizations and of KavachOS's organization plugin:
// organization, membership, role). Roles and what they allow:
//
//	owner   everything: update and delete the organization, add, re-role
//	        and remove anyone (owners included)
//	admin   update the organization; add, re-role and remove admins and
//	        members — never owners, and never make anyone an owner
//	member  see the organization and its members, leave it
//
// Every member may create agents in the organization; its owners and
// admins manage all of them (that rule lives with the agents API). A server
// admin acts as an owner of every organization. An organization always
// keeps at least one owner: the last one can be neither demoted nor
// removed, and cannot leave.
//
// Invariants that span rows (the last owner, the member limit, no live
// agents before a delete) are checked under the organization's row lock
// (storage.Organizations.Lock), so they hold with several nodes on one
// PostgreSQL database.

// Event types of organizations, written to the outbox in the same
// transaction as the change.
const (
	EventOrgCreated           = "organization.created"
	EventOrgUpdated           = "organization.updated"
	EventOrgDeleted           = "organization.deleted"
	EventOrgMemberAdded       = "organization.member_added"
	EventOrgMemberRemoved     = "organization.member_removed"
	EventOrgMemberRoleChanged = "organization.member_role_changed"
)

// Domain errors of organizations. ErrOrganizationNotFound also answers a
// user who is not a member, so ids cannot be probed.
var (
	ErrOrganizationNotFound = errors.New("organization not found")
	// ErrOrgForbidden refuses a member whose role does not allow the change.
	ErrOrgForbidden    = errors.New("your role in the organization does not allow this")
	ErrOrgSlugTaken    = errors.New("the organization slug is taken")
	ErrAlreadyMember   = errors.New("the user is already a member")
	ErrMemberNotFound  = errors.New("member not found")
	ErrLastOwner       = errors.New("an organization needs at least one owner")
	ErrOrgHasAgents    = errors.New("the organization still has agents that are not revoked")
	ErrOrgMemberLimit  = errors.New("the organization has reached its member limit")
	ErrOrgLimitReached = errors.New("the user belongs to the maximum number of organizations")
)

// Limits on what a caller may store with an organization. Member and
// membership counts are Config.MaxOrgMembers and Config.MaxOrgsPerUser.
const (
	MaxOrgNameRunes     = 128
	MaxOrgSlugLength    = 64
	MaxOrgMetadataBytes = 16 << 10
)

// OrgActor is who asks for an organization operation.
type OrgActor struct {
	UserID string
	// ServerAdmin acts as an owner of every organization, member or not.
	ServerAdmin bool
}

// Organizations manages organizations and memberships; get it with
// Service.Organizations.
type Organizations struct{ s *Service }

// Organizations returns the organization operations of the service.
func (s *Service) Organizations() Organizations { return Organizations{s} }

// CreateOrgInput describes a new organization. An empty Slug is derived
// from the name.
type CreateOrgInput struct {
	Name     string
	Slug     string
	Metadata json.RawMessage // a JSON object; empty means {}
}

// Create stores a new organization whose creator is its first owner.
func (o Organizations) Create(ctx context.Context, creatorID string, in CreateOrgInput) (storage.Organization, error) {
	name, err := checkOrgName(in.Name)
	if err != nil {
		return storage.Organization{}, err
	}
	var slug string
	derived := in.Slug == ""
	if derived {
		slug = slugFromName(name)
	} else if slug, err = checkSlug(in.Slug); err != nil {
		return storage.Organization{}, err
	}
	md, err := checkOrgMetadata(in.Metadata)
	if err != nil {
		return storage.Organization{}, err
	}
	now := o.s.now()
	org := storage.Organization{ID: id.New("org"), Name: name, Slug: slug, Metadata: md, CreatedBy: &creatorID,
		CreatedAt: now, UpdatedAt: now}
	err = o.s.store.InTx(ctx, func(tx storage.Store) error {
		if _, err := found(tx.Users().Get(ctx, creatorID)); err != nil {
			return err
		}
		if err := o.checkOrgCount(ctx, tx, creatorID); err != nil {
			return err
		}
		// Look before inserting: a failed INSERT would end a PostgreSQL
		// transaction. A derived slug that is taken gets a random suffix.
		if _, err := tx.Organizations().GetBySlug(ctx, org.Slug); err == nil {
			if !derived {
				return ErrOrgSlugTaken
			}
			org.Slug = fmt.Sprintf("%.*s-%s", MaxOrgSlugLength-7, org.Slug, org.ID[len(org.ID)-6:])
		} else if !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("look up slug: %w", err)
		}
		if err := tx.Organizations().Create(ctx, &org); err != nil {
			if errors.Is(err, storage.ErrAlreadyExists) {
				return ErrOrgSlugTaken
			}
			return fmt.Errorf("create organization: %w", err)
		}
		owner := storage.OrgMember{OrganizationID: org.ID, UserID: creatorID, Role: storage.OrgRoleOwner, CreatedAt: now}
		if err := tx.Organizations().AddMember(ctx, &owner); err != nil {
			return fmt.Errorf("add owner: %w", err)
		}
		return emit(ctx, tx, EventOrgCreated, org.ID, map[string]any{
			"organizationId": org.ID, "name": org.Name, "slug": org.Slug, "createdBy": creatorID}, now)
	})
	if err != nil {
		return storage.Organization{}, err
	}
	return org, nil
}

// checkOrgCount refuses a user who already belongs to MaxOrgsPerUser
// organizations.
func (o Organizations) checkOrgCount(ctx context.Context, tx storage.Store, userID string) error {
	mine, err := tx.Organizations().ListByUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("list organizations: %w", err)
	}
	if len(mine) >= o.s.cfg.MaxOrgsPerUser {
		return ErrOrgLimitReached
	}
	return nil
}

// Get returns the organization and the actor's role in it ("" for a server
// admin who is not a member).
func (o Organizations) Get(ctx context.Context, actor OrgActor, orgID string) (storage.Organization, string, error) {
	a, err := o.access(ctx, o.s.store, actor, orgID, false)
	if err != nil {
		return storage.Organization{}, "", err
	}
	return a.org, a.role, nil
}

// ListForUser returns the organizations the user belongs to, with the
// user's role in each, oldest first.
func (o Organizations) ListForUser(ctx context.Context, userID string) ([]storage.UserOrganization, error) {
	list, err := o.s.store.Organizations().ListByUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list organizations: %w", err)
	}
	return list, nil
}

// MemberRole returns the user's role in the organization, or "" when the
// user is not a member (or there is no such organization).
func (o Organizations) MemberRole(ctx context.Context, orgID, userID string) (string, error) {
	m, err := o.s.store.Organizations().GetMember(ctx, orgID, userID)
	switch {
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrInvalidValue):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("get membership: %w", err)
	}
	return m.Role, nil
}

// UpdateOrgInput changes the fields that are set.
type UpdateOrgInput struct {
	Name     *string
	Slug     *string
	Metadata *json.RawMessage
}

// Update changes an organization (owners and admins).
func (o Organizations) Update(ctx context.Context, actor OrgActor, orgID string, in UpdateOrgInput) (storage.Organization, error) {
	var name, slug string
	var md []byte
	var err error
	if in.Name != nil {
		if name, err = checkOrgName(*in.Name); err != nil {
			return storage.Organization{}, err
		}
	}
	if in.Slug != nil {
		if slug, err = checkSlug(*in.Slug); err != nil {
			return storage.Organization{}, err
		}
	}
	if in.Metadata != nil {
		if md, err = checkOrgMetadata(*in.Metadata); err != nil {
			return storage.Organization{}, err
		}
	}
	now := o.s.now()
	var out storage.Organization
	err = o.s.store.InTx(ctx, func(tx storage.Store) error {
		a, err := o.access(ctx, tx, actor, orgID, true)
		if err != nil {
			return err
		}
		if !a.atLeastAdmin() {
			return ErrOrgForbidden
		}
		org := a.org
		var changed []string
		if in.Name != nil && name != org.Name {
			org.Name = name
			changed = append(changed, "name")
		}
		if in.Slug != nil && slug != org.Slug {
			if _, err := tx.Organizations().GetBySlug(ctx, slug); err == nil {
				return ErrOrgSlugTaken
			} else if !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("look up slug: %w", err)
			}
			org.Slug = slug
			changed = append(changed, "slug")
		}
		if in.Metadata != nil && string(md) != string(org.Metadata) {
			org.Metadata = md
			changed = append(changed, "metadata")
		}
		out = org
		if len(changed) == 0 {
			return nil
		}
		org.UpdatedAt = now
		if err := tx.Organizations().Update(ctx, &org); err != nil {
			if errors.Is(err, storage.ErrAlreadyExists) {
				return ErrOrgSlugTaken
			}
			return fmt.Errorf("update organization: %w", err)
		}
		out = org
		return emit(ctx, tx, EventOrgUpdated, org.ID, map[string]any{
			"organizationId": org.ID, "changed": changed, "actorId": actor.UserID}, now)
	})
	return out, err
}

// Delete removes an organization (owners only) with its memberships. It
// refuses while any agent of the organization is not revoked: revoke them
// first. Revoked agents stay, without an organization.
func (o Organizations) Delete(ctx context.Context, actor OrgActor, orgID string) error {
	now := o.s.now()
	return o.s.store.InTx(ctx, func(tx storage.Store) error {
		a, err := o.access(ctx, tx, actor, orgID, true)
		if err != nil {
			return err
		}
		if a.effective != storage.OrgRoleOwner {
			return ErrOrgForbidden
		}
		// Agent creation takes the same lock, so no agent can join the
		// organization between this check and the delete.
		agents, err := tx.Agents().ListByOrganization(ctx, orgID)
		if err != nil {
			return fmt.Errorf("list organization agents: %w", err)
		}
		for _, ag := range agents {
			if ag.Status != storage.AgentRevoked {
				return ErrOrgHasAgents
			}
		}
		if err := tx.Organizations().Delete(ctx, orgID); err != nil {
			return fmt.Errorf("delete organization: %w", err)
		}
		return emit(ctx, tx, EventOrgDeleted, orgID, map[string]any{
			"organizationId": orgID, "slug": a.org.Slug, "actorId": actor.UserID}, now)
	})
}

// ListMembers returns the members with their profiles (any member).
func (o Organizations) ListMembers(ctx context.Context, actor OrgActor, orgID string) ([]storage.OrgMemberProfile, error) {
	if _, err := o.access(ctx, o.s.store, actor, orgID, false); err != nil {
		return nil, err
	}
	list, err := o.s.store.Organizations().ListMembers(ctx, orgID)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	return list, nil
}

// AddMemberInput names the user to add, by id or by email (exactly one),
// and the role (member when empty).
type AddMemberInput struct {
	UserID string
	Email  string
	Role   string
}

// AddMember adds an existing user (owners and admins; only owners may add
// an owner).
func (o Organizations) AddMember(ctx context.Context, actor OrgActor, orgID string, in AddMemberInput) (storage.OrgMemberProfile, error) {
	role := in.Role
	if role == "" {
		role = storage.OrgRoleMember
	}
	if err := checkRole(role); err != nil {
		return storage.OrgMemberProfile{}, err
	}
	if (in.UserID == "") == (in.Email == "") {
		return storage.OrgMemberProfile{}, &InputError{Field: "userId", Message: "give either userId or email"}
	}
	now := o.s.now()
	var out storage.OrgMemberProfile
	err := o.s.store.InTx(ctx, func(tx storage.Store) error {
		a, err := o.access(ctx, tx, actor, orgID, true)
		if err != nil {
			return err
		}
		if !a.atLeastAdmin() || role == storage.OrgRoleOwner && a.effective != storage.OrgRoleOwner {
			return ErrOrgForbidden
		}
		u, err := o.findUser(ctx, tx, in)
		if err != nil {
			return err
		}
		members, err := tx.Organizations().ListMembers(ctx, orgID)
		if err != nil {
			return fmt.Errorf("list members: %w", err)
		}
		for _, m := range members {
			if m.UserID == u.ID {
				return ErrAlreadyMember
			}
		}
		if len(members) >= o.s.cfg.MaxOrgMembers {
			return ErrOrgMemberLimit
		}
		if err := o.checkOrgCount(ctx, tx, u.ID); err != nil {
			return err
		}
		m := storage.OrgMember{OrganizationID: orgID, UserID: u.ID, Role: role, CreatedAt: now}
		if err := tx.Organizations().AddMember(ctx, &m); err != nil {
			switch {
			case errors.Is(err, storage.ErrAlreadyExists):
				return ErrAlreadyMember
			case errors.Is(err, storage.ErrNotFound):
				return ErrUserNotFound
			}
			return fmt.Errorf("add member: %w", err)
		}
		out = profile(m, u)
		return emit(ctx, tx, EventOrgMemberAdded, orgID, map[string]any{
			"organizationId": orgID, "userId": u.ID, "role": role, "actorId": actor.UserID}, now)
	})
	return out, err
}

// findUser resolves AddMemberInput's user.
func (o Organizations) findUser(ctx context.Context, tx storage.Store, in AddMemberInput) (storage.User, error) {
	if in.UserID != "" {
		// No check of the id's shape: users imported from Clerk keep
		// their user_… ids.
		u, err := tx.Users().Get(ctx, in.UserID)
		if errors.Is(err, storage.ErrInvalidValue) {
			return storage.User{}, ErrUserNotFound
		}
		return found(u, err)
	}
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		return storage.User{}, err
	}
	return found(tx.Users().GetByEmail(ctx, email))
}

// UpdateRole changes a member's role (owners and admins). Admins can
// neither change an owner's role nor make anyone an owner; the last owner
// cannot be demoted.
func (o Organizations) UpdateRole(ctx context.Context, actor OrgActor, orgID, userID, role string) (storage.OrgMemberProfile, error) {
	if err := checkRole(role); err != nil {
		return storage.OrgMemberProfile{}, err
	}
	now := o.s.now()
	var out storage.OrgMemberProfile
	err := o.s.store.InTx(ctx, func(tx storage.Store) error {
		a, err := o.access(ctx, tx, actor, orgID, true)
		if err != nil {
			return err
		}
		if !a.atLeastAdmin() {
			return ErrOrgForbidden
		}
		target, members, err := o.member(ctx, tx, orgID, userID)
		if err != nil {
			return err
		}
		if a.effective != storage.OrgRoleOwner && (target.Role == storage.OrgRoleOwner || role == storage.OrgRoleOwner) {
			return ErrOrgForbidden
		}
		out = target
		if target.Role == role {
			return nil
		}
		if target.Role == storage.OrgRoleOwner && owners(members) == 1 {
			return ErrLastOwner
		}
		if err := tx.Organizations().SetMemberRole(ctx, orgID, userID, role); err != nil {
			return fmt.Errorf("set member role: %w", err)
		}
		from := target.Role
		out.Role = role
		return emit(ctx, tx, EventOrgMemberRoleChanged, orgID, map[string]any{
			"organizationId": orgID, "userId": userID, "from": from, "role": role, "actorId": actor.UserID}, now)
	})
	return out, err
}

// RemoveMember removes a member: owners and admins may remove others
// (admins not owners), and every member may remove themselves (leave).
// The last owner cannot be removed. Agents the member created in the
// organization stay; its owners and admins still manage them.
func (o Organizations) RemoveMember(ctx context.Context, actor OrgActor, orgID, userID string) error {
	now := o.s.now()
	return o.s.store.InTx(ctx, func(tx storage.Store) error {
		a, err := o.access(ctx, tx, actor, orgID, true)
		if err != nil {
			return err
		}
		self := userID == actor.UserID
		if !self && !a.atLeastAdmin() {
			return ErrOrgForbidden
		}
		target, members, err := o.member(ctx, tx, orgID, userID)
		if err != nil {
			return err
		}
		if !self && target.Role == storage.OrgRoleOwner && a.effective != storage.OrgRoleOwner {
			return ErrOrgForbidden
		}
		if target.Role == storage.OrgRoleOwner && owners(members) == 1 {
			return ErrLastOwner
		}
		if err := tx.Organizations().RemoveMember(ctx, orgID, userID); err != nil {
			return fmt.Errorf("remove member: %w", err)
		}
		return emit(ctx, tx, EventOrgMemberRemoved, orgID, map[string]any{
			"organizationId": orgID, "userId": userID, "role": target.Role, "actorId": actor.UserID, "left": self}, now)
	})
}

// member finds userID among the organization's members, which it returns
// too.
func (o Organizations) member(ctx context.Context, tx storage.Store, orgID, userID string) (storage.OrgMemberProfile, []storage.OrgMemberProfile, error) {
	members, err := tx.Organizations().ListMembers(ctx, orgID)
	if err != nil {
		return storage.OrgMemberProfile{}, nil, fmt.Errorf("list members: %w", err)
	}
	for _, m := range members {
		if m.UserID == userID {
			return m, members, nil
		}
	}
	return storage.OrgMemberProfile{}, nil, ErrMemberNotFound
}

func owners(members []storage.OrgMemberProfile) int {
	n := 0
	for _, m := range members {
		if m.Role == storage.OrgRoleOwner {
			n++
		}
	}
	return n
}

func profile(m storage.OrgMember, u storage.User) storage.OrgMemberProfile {
	return storage.OrgMemberProfile{OrgMember: m, Email: u.Email, Name: u.Name, Image: u.Image}
}

// orgAccess is what an actor may do in one organization.
type orgAccess struct {
	org       storage.Organization
	role      string // the actor's membership role; "" for a server admin who is not a member
	effective string // the role the actor acts with (owner for a server admin)
}

func (a orgAccess) atLeastAdmin() bool {
	return a.effective == storage.OrgRoleOwner || a.effective == storage.OrgRoleAdmin
}

// access loads the organization for an actor who is a member or a server
// admin; to anyone else it does not exist. With lock it takes the
// organization's row lock first and reads the actor's role under it, so a
// concurrent demotion cannot slip between the check and the change. The
// lock is only taken for someone who may see the organization.
func (o Organizations) access(ctx context.Context, tx storage.Store, actor OrgActor, orgID string, lock bool) (orgAccess, error) {
	read := func() (orgAccess, error) {
		org, err := tx.Organizations().Get(ctx, orgID)
		switch {
		case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrInvalidValue):
			return orgAccess{}, ErrOrganizationNotFound
		case err != nil:
			return orgAccess{}, fmt.Errorf("get organization: %w", err)
		}
		a := orgAccess{org: *org}
		m, err := tx.Organizations().GetMember(ctx, orgID, actor.UserID)
		switch {
		case err == nil:
			a.role, a.effective = m.Role, m.Role
		case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrInvalidValue):
		default:
			return orgAccess{}, fmt.Errorf("get membership: %w", err)
		}
		if actor.ServerAdmin {
			a.effective = storage.OrgRoleOwner
		}
		if a.effective == "" {
			return orgAccess{}, ErrOrganizationNotFound
		}
		return a, nil
	}
	a, err := read()
	if err != nil || !lock {
		return a, err
	}
	if err := tx.Organizations().Lock(ctx, orgID); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return orgAccess{}, ErrOrganizationNotFound
		}
		return orgAccess{}, fmt.Errorf("lock organization: %w", err)
	}
	return read()
}
