package sqlstore

import (
	"context"

	"github.com/kavachos/kavach/storage"
)

type organizations struct{ s *Store }

const orgColumns = `id, name, slug, metadata, created_by, created_at, updated_at`

// orgRow scans the metadata as text and converts it afterwards.
type orgRow struct {
	storage.Organization
	metadata string
}

func orgFields(o *orgRow) []any {
	return []any{&o.ID, &o.Name, &o.Slug, &o.metadata, &o.CreatedBy, &o.CreatedAt, &o.UpdatedAt}
}

func (o *orgRow) record() storage.Organization {
	out := o.Organization
	out.Metadata = []byte(o.metadata)
	return out
}

func orgMetadata(md []byte) string {
	if len(md) == 0 {
		return "{}"
	}
	return string(md)
}

// Create inserts o, setting zero CreatedAt and UpdatedAt to now and empty
// metadata to {}.
func (r organizations) Create(ctx context.Context, o *storage.Organization) error {
	t := now()
	stamp(&o.CreatedAt, t)
	stamp(&o.UpdatedAt, t)
	o.Metadata = []byte(orgMetadata(o.Metadata))
	_, err := r.s.exec(ctx, "organizations.create",
		`INSERT INTO kavach_organization (`+orgColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		o.ID, o.Name, o.Slug, string(o.Metadata), o.CreatedBy, o.CreatedAt, o.UpdatedAt)
	return err
}

func (r organizations) one(ctx context.Context, op, where, arg string) (*storage.Organization, error) {
	var row orgRow
	if err := r.s.get(ctx, op, `SELECT `+orgColumns+` FROM kavach_organization WHERE `+where+` = ?`, []any{arg}, orgFields(&row)...); err != nil {
		return nil, err
	}
	o := row.record()
	return &o, nil
}

func (r organizations) Get(ctx context.Context, id string) (*storage.Organization, error) {
	return r.one(ctx, "organizations.get", "id", id)
}

func (r organizations) GetBySlug(ctx context.Context, slug string) (*storage.Organization, error) {
	return r.one(ctx, "organizations.get_by_slug", "slug", slug)
}

func (r organizations) Update(ctx context.Context, o *storage.Organization) error {
	return r.s.execOne(ctx, "organizations.update",
		`UPDATE kavach_organization SET name = ?, slug = ?, metadata = ?, updated_at = ? WHERE id = ?`,
		o.Name, o.Slug, orgMetadata(o.Metadata), o.UpdatedAt.UTC(), o.ID)
}

// Delete removes the organization; foreign keys cascade to memberships
// and clear the organization of its agents.
func (r organizations) Delete(ctx context.Context, id string) error {
	return r.s.execOne(ctx, "organizations.delete", `DELETE FROM kavach_organization WHERE id = ?`, id)
}

// Lock writes the row without changing it: on PostgreSQL the UPDATE holds
// the row lock until the transaction ends, so a second Lock of the same
// organization waits; SQLite serializes write transactions anyway.
func (r organizations) Lock(ctx context.Context, id string) error {
	return r.s.execOne(ctx, "organizations.lock",
		`UPDATE kavach_organization SET updated_at = updated_at WHERE id = ?`, id)
}

func (r organizations) ListByUser(ctx context.Context, userID string) ([]storage.UserOrganization, error) {
	type userOrgRow struct {
		orgRow
		role string
	}
	rows, err := list(ctx, r.s, "organizations.list_by_user",
		`SELECT o.id, o.name, o.slug, o.metadata, o.created_by, o.created_at, o.updated_at, m.role
		   FROM kavach_org_member m JOIN kavach_organization o ON o.id = m.organization_id
		  WHERE m.user_id = ? ORDER BY o.created_at, o.id`, []any{userID},
		func(x *userOrgRow) []any { return append(orgFields(&x.orgRow), &x.role) })
	if err != nil {
		return nil, err
	}
	out := make([]storage.UserOrganization, len(rows))
	for i := range rows {
		out[i] = storage.UserOrganization{Organization: rows[i].record(), Role: rows[i].role}
	}
	return out, nil
}

// AddMember inserts only if the organization and the user exist, so a
// missing one is ErrNotFound rather than a foreign-key error.
func (r organizations) AddMember(ctx context.Context, m *storage.OrgMember) error {
	stamp(&m.CreatedAt, now())
	return r.s.execOne(ctx, "organizations.add_member",
		`INSERT INTO kavach_org_member (organization_id, user_id, role, created_at)
		 SELECT ?, ?, ?, ?
		  WHERE EXISTS (SELECT 1 FROM kavach_organization WHERE id = ?)
		    AND EXISTS (SELECT 1 FROM kavach_user WHERE id = ?)`,
		m.OrganizationID, m.UserID, m.Role, m.CreatedAt, m.OrganizationID, m.UserID)
}

func (r organizations) GetMember(ctx context.Context, orgID, userID string) (*storage.OrgMember, error) {
	var m storage.OrgMember
	err := r.s.get(ctx, "organizations.get_member",
		`SELECT organization_id, user_id, role, created_at FROM kavach_org_member WHERE organization_id = ? AND user_id = ?`,
		[]any{orgID, userID}, &m.OrganizationID, &m.UserID, &m.Role, &m.CreatedAt)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

func (r organizations) ListMembers(ctx context.Context, orgID string) ([]storage.OrgMemberProfile, error) {
	return list(ctx, r.s, "organizations.list_members",
		`SELECT m.organization_id, m.user_id, m.role, m.created_at, u.email, u.name, u.image
		   FROM kavach_org_member m JOIN kavach_user u ON u.id = m.user_id
		  WHERE m.organization_id = ? ORDER BY m.created_at, m.user_id`, []any{orgID},
		func(p *storage.OrgMemberProfile) []any {
			return []any{&p.OrganizationID, &p.UserID, &p.Role, &p.CreatedAt, &p.Email, &p.Name, &p.Image}
		})
}

func (r organizations) SetMemberRole(ctx context.Context, orgID, userID, role string) error {
	return r.s.execOne(ctx, "organizations.set_member_role",
		`UPDATE kavach_org_member SET role = ? WHERE organization_id = ? AND user_id = ?`, role, orgID, userID)
}

func (r organizations) RemoveMember(ctx context.Context, orgID, userID string) error {
	return r.s.execOne(ctx, "organizations.remove_member",
		`DELETE FROM kavach_org_member WHERE organization_id = ? AND user_id = ?`, orgID, userID)
}
