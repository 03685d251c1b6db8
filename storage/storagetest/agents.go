package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

var agentTests = []test{
	{"CreateGetList", testAgentCreateGetList},
	{"Duplicates", testAgentDuplicates},
	{"NotFound", testAgentNotFound},
	{"StatusAndTouch", testAgentStatusAndTouch},
	{"Update", testAgentUpdate},
	{"ClientDeleteKeepsAgent", testAgentClientDeleteKeepsAgent},
	{"OwnerDeleteCascades", testAgentOwnerDeleteCascades},
	{"ChildrenAndDepth", testAgentChildren},
	{"SetClientIDOnce", testAgentSetClientID},
	{"Lock", testAgentLock},
}

func newAgent(id, typ string, owner, client *string) *storage.Agent {
	return &storage.Agent{ID: id, Type: typ, Name: "agent " + id, OwnerUserID: owner, ClientID: client, Status: storage.AgentActive}
}

func testAgentCreateGetList(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	c := createOAuthClient(t, s)
	a := newAgent("agt_1", storage.AgentDelegated, &u.ID, &c.ID)
	a.Metadata = []byte(`{"team":"ops","ünï":"✓"}`)
	must(t, "create", s.Agents().Create(ctx, a))
	b := newAgent("agt_2", storage.AgentService, nil, nil)
	b.CreatedAt = a.CreatedAt.Add(time.Second)
	must(t, "create b", s.Agents().Create(ctx, b))
	if string(b.Metadata) != "{}" {
		t.Fatalf("empty metadata stored as %q", b.Metadata)
	}
	got, err := s.Agents().Get(ctx, "agt_1")
	must(t, "get", err)
	wantSame(t, "get", got, a)
	byClient, err := s.Agents().GetByClientID(ctx, c.ID)
	must(t, "get by client", err)
	wantSame(t, "get by client", byClient, a)
	all, err := s.Agents().List(ctx, 10, 0)
	must(t, "list", err)
	wantSame(t, "list", all, []storage.Agent{*a, *b})
	mine, err := s.Agents().ListByOwner(ctx, u.ID)
	must(t, "list by owner", err)
	wantSame(t, "list by owner", mine, []storage.Agent{*a})
}

func testAgentDuplicates(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := createOAuthClient(t, s)
	must(t, "create", s.Agents().Create(ctx, newAgent("agt_1", storage.AgentService, nil, &c.ID)))
	if err := s.Agents().Create(ctx, newAgent("agt_1", storage.AgentService, nil, nil)); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicate id: %v", err)
	}
	if err := s.Agents().Create(ctx, newAgent("agt_2", storage.AgentService, nil, &c.ID)); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("second agent for one client: %v", err)
	}
}

func testAgentNotFound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	if _, err := s.Agents().Get(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get: %v", err)
	}
	if _, err := s.Agents().GetByClientID(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get by client: %v", err)
	}
	if err := s.Agents().SetStatus(ctx, "missing", storage.AgentRevoked, now()); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("set status: %v", err)
	}
	if err := s.Agents().Delete(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("delete: %v", err)
	}
}

func testAgentStatusAndTouch(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := newAgent("agt_1", storage.AgentAutonomous, nil, nil)
	must(t, "create", s.Agents().Create(ctx, a))
	at := now().Add(time.Minute)
	must(t, "suspend", s.Agents().SetStatus(ctx, a.ID, storage.AgentSuspended, at))
	must(t, "touch", s.Agents().Touch(ctx, a.ID, at))
	got, err := s.Agents().Get(ctx, a.ID)
	must(t, "get", err)
	if got.Status != storage.AgentSuspended || !got.UpdatedAt.Equal(at) || got.LastActiveAt == nil || !got.LastActiveAt.Equal(at) {
		t.Fatalf("after suspend and touch: %+v", got)
	}
}

func testAgentUpdate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	a := newAgent("agt_1", storage.AgentDelegated, &u.ID, nil)
	must(t, "create", s.Agents().Create(ctx, a))
	exp := now().Add(time.Hour)
	a.Name, a.Metadata, a.ExpiresAt, a.UpdatedAt = "renamed ✓", []byte(`{"k":"v"}`), &exp, now().Add(time.Minute)
	a.Status, a.Type = storage.AgentRevoked, storage.AgentService // not written by Update
	must(t, "update", s.Agents().Update(ctx, a))
	got, err := s.Agents().Get(ctx, a.ID)
	must(t, "get", err)
	a.Status, a.Type = storage.AgentActive, storage.AgentDelegated
	wantSame(t, "after update", got, a)
	a.ExpiresAt = nil
	must(t, "clear expiry", s.Agents().Update(ctx, a))
	if got, err = s.Agents().Get(ctx, a.ID); err != nil || got.ExpiresAt != nil {
		t.Fatalf("expiry not cleared: %+v, %v", got, err)
	}
	if err := s.Agents().Update(ctx, newAgent("missing", storage.AgentService, nil, nil)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
}

func testAgentClientDeleteKeepsAgent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := createOAuthClient(t, s)
	must(t, "create", s.Agents().Create(ctx, newAgent("agt_1", storage.AgentService, nil, &c.ID)))
	must(t, "delete client", s.OAuthClients().Delete(ctx, c.ID))
	got, err := s.Agents().Get(ctx, "agt_1")
	must(t, "get", err)
	if got.ClientID != nil {
		t.Fatalf("client id kept after the client was deleted: %v", *got.ClientID)
	}
}

func testAgentOwnerDeleteCascades(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	must(t, "create", s.Agents().Create(ctx, newAgent("agt_1", storage.AgentAutonomous, &u.ID, nil)))
	must(t, "delete user", s.Users().Delete(ctx, u.ID))
	if _, err := s.Agents().Get(ctx, "agt_1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("agent survived its owner: %v", err)
	}
}

var agentCredentialTests = []test{
	{"GrantsReplaceList", testAgentGrantsReplaceList},
	{"KeysCreateGetRevoke", testAgentKeys},
}

func testAgentGrantsReplaceList(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := newAgent("agt_g", storage.AgentAutonomous, nil, nil)
	must(t, "create agent", s.Agents().Create(ctx, a))
	first := []storage.AgentGrant{{ID: "g1", Spec: []byte(`{"resource":"mcp:*"}`)}, {ID: "g2", Spec: []byte(`{"resource":"files:read:ünï"}`)}}
	must(t, "replace", s.AgentGrants().Replace(ctx, a.ID, first))
	got, err := s.AgentGrants().List(ctx, a.ID)
	must(t, "list", err)
	if len(got) != 2 || got[0].ID != "g1" || string(got[1].Spec) != `{"resource":"files:read:ünï"}` {
		t.Fatalf("list %+v", got)
	}
	must(t, "replace again", s.AgentGrants().Replace(ctx, a.ID, []storage.AgentGrant{{ID: "g3", Spec: []byte(`{}`)}}))
	got, err = s.AgentGrants().List(ctx, a.ID)
	must(t, "list", err)
	if len(got) != 1 || got[0].ID != "g3" {
		t.Fatalf("after replace %+v", got)
	}
	must(t, "delete agent", s.Agents().Delete(ctx, a.ID))
	if got, _ := s.AgentGrants().List(ctx, a.ID); len(got) != 0 {
		t.Fatalf("grants survived their agent: %+v", got)
	}
}

func testAgentKeys(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := newAgent("agt_k", storage.AgentService, nil, nil)
	must(t, "create agent", s.Agents().Create(ctx, a))
	k1 := &storage.AgentKey{ID: "key1", AgentID: a.ID, Hash: "h1", Prefix: "kv_abc"}
	k2 := &storage.AgentKey{ID: "key2", AgentID: a.ID, Hash: "h2", Prefix: "kv_def"}
	must(t, "create k1", s.AgentKeys().Create(ctx, k1))
	must(t, "create k2", s.AgentKeys().Create(ctx, k2))
	if err := s.AgentKeys().Create(ctx, &storage.AgentKey{ID: "key3", AgentID: a.ID, Hash: "h1", Prefix: "x"}); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicate hash: %v", err)
	}
	got, err := s.AgentKeys().GetByHash(ctx, "h2")
	must(t, "get", err)
	wantSame(t, "get", got, k2)
	if _, err := s.AgentKeys().GetByHash(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	at := now().Add(time.Hour)
	n, err := s.AgentKeys().RevokeAgentKeys(ctx, a.ID, "key2", at)
	must(t, "revoke", err)
	if n != 1 {
		t.Fatalf("revoked %d, want 1", n)
	}
	// An earlier revocation time overrides a later one; the kept key stays.
	n, err = s.AgentKeys().RevokeAgentKeys(ctx, a.ID, "", now())
	must(t, "revoke all", err)
	if n != 2 {
		t.Fatalf("revoked %d, want 2", n)
	}
	keys, err := s.AgentKeys().ListByAgent(ctx, a.ID)
	must(t, "list", err)
	if len(keys) != 2 || keys[0].RevokedAt == nil || keys[1].RevokedAt == nil {
		t.Fatalf("keys %+v", keys)
	}
}

func testAgentChildren(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	p := newAgent("agt_p", storage.AgentAutonomous, &u.ID, nil)
	must(t, "create parent", s.Agents().Create(ctx, p))
	c1 := newAgent("agt_c1", storage.AgentAutonomous, &u.ID, nil)
	c1.ParentID, c1.DelegationDepth = &p.ID, 1
	must(t, "create child", s.Agents().Create(ctx, c1))
	c2 := newAgent("agt_c2", storage.AgentAutonomous, &u.ID, nil)
	c2.ParentID, c2.DelegationDepth = &p.ID, 1
	c2.CreatedAt = c1.CreatedAt.Add(time.Second)
	must(t, "create child 2", s.Agents().Create(ctx, c2))
	g := newAgent("agt_g", storage.AgentAutonomous, &u.ID, nil)
	g.ParentID, g.DelegationDepth = &c1.ID, 2
	must(t, "create grandchild", s.Agents().Create(ctx, g))
	kids, err := s.Agents().ListChildren(ctx, p.ID)
	must(t, "list children", err)
	wantSame(t, "children", kids, []storage.Agent{*c1, *c2})
	got, err := s.Agents().Get(ctx, g.ID)
	must(t, "get grandchild", err)
	wantSame(t, "grandchild", got, g)
	none, err := s.Agents().ListChildren(ctx, g.ID)
	must(t, "list leaf children", err)
	if len(none) != 0 {
		t.Fatalf("leaf has children: %+v", none)
	}
	orphan := newAgent("agt_o", storage.AgentAutonomous, &u.ID, nil)
	missing := "agt_missing"
	orphan.ParentID = &missing
	if err := s.Agents().Create(ctx, orphan); err == nil {
		t.Fatal("a sub-agent of a missing parent was stored")
	}
	// Deleting the parent removes the chain below it.
	must(t, "delete parent", s.Agents().Delete(ctx, p.ID))
	if _, err := s.Agents().Get(ctx, g.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("grandchild after parent delete: %v", err)
	}
}

func testAgentSetClientID(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	c := createOAuthClient(t, s)
	c2 := createOAuthClient(t, s)
	a := newAgent("agt_1", storage.AgentAutonomous, &u.ID, nil)
	must(t, "create", s.Agents().Create(ctx, a))
	b := newAgent("agt_2", storage.AgentAutonomous, &u.ID, nil)
	must(t, "create b", s.Agents().Create(ctx, b))
	at := a.CreatedAt.Add(time.Minute)
	must(t, "bind", s.Agents().SetClientID(ctx, a.ID, c.ID, at))
	got, err := s.Agents().GetByClientID(ctx, c.ID)
	must(t, "get by client", err)
	if got.ID != a.ID || !got.UpdatedAt.Equal(at) {
		t.Fatalf("bound agent: %+v", got)
	}
	if err := s.Agents().SetClientID(ctx, a.ID, c2.ID, at); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("second binding: %v", err)
	}
	if err := s.Agents().SetClientID(ctx, b.ID, c.ID, at); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("binding another agent's client: %v", err)
	}
	if err := s.Agents().SetClientID(ctx, "agt_missing", c2.ID, at); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("binding a missing agent: %v", err)
	}
}

func testAgentLock(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := newAgent("agt_1", storage.AgentService, nil, nil)
	must(t, "create", s.Agents().Create(ctx, a))
	must(t, "lock in a transaction", s.InTx(ctx, func(tx storage.Store) error { return tx.Agents().Lock(ctx, a.ID) }))
	must(t, "lock outside one", s.Agents().Lock(ctx, a.ID))
	if err := s.Agents().Lock(ctx, "agt_missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("lock a missing agent: %v", err)
	}
	got, err := s.Agents().Get(ctx, a.ID)
	must(t, "get", err)
	wantSame(t, "after locking", got, a)
}

var userGrantTests = []test{
	{"ReplaceList", testUserGrants},
}

func testUserGrants(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	v := createUser(t, s)
	gs := []storage.AgentGrant{{ID: "grt_1", Spec: []byte(`{"resource":"a:*","actions":["read"]}`)}, {ID: "grt_2", Spec: []byte(`{"resource":"b","actions":["*"]}`)}}
	must(t, "replace", s.UserGrants().Replace(ctx, u.ID, gs))
	must(t, "replace other", s.UserGrants().Replace(ctx, v.ID, []storage.AgentGrant{{ID: "grt_3", Spec: []byte(`{}`)}}))
	got, err := s.UserGrants().List(ctx, u.ID)
	must(t, "list", err)
	if len(got) != 2 || got[0].ID != "grt_1" || got[1].ID != "grt_2" || got[0].AgentID != u.ID || string(got[1].Spec) != string(gs[1].Spec) {
		t.Fatalf("user grants %+v", got)
	}
	must(t, "clear", s.UserGrants().Replace(ctx, u.ID, nil))
	if got, err := s.UserGrants().List(ctx, u.ID); err != nil || len(got) != 0 {
		t.Fatalf("after clearing: %+v %v", got, err)
	}
	if other, err := s.UserGrants().List(ctx, v.ID); err != nil || len(other) != 1 {
		t.Fatalf("another user's grants: %+v %v", other, err)
	}
	must(t, "delete user", s.Users().Delete(ctx, v.ID))
	if other, err := s.UserGrants().List(ctx, v.ID); err != nil || len(other) != 0 {
		t.Fatalf("grants outlived their user: %+v %v", other, err)
	}
}
