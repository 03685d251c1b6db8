package storagetest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

// now is a test clock reading at the precision every driver keeps.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

func newID(prefix string) string { return prefix + "_" + randomHex(8) }

func createUser(t testing.TB, s storage.Store) *storage.User {
	t.Helper()
	id := newID("usr")
	u := &storage.User{ID: id, Email: id + "@example.com", Name: "Test User", CreatedAt: now(), UpdatedAt: now()}
	if err := s.Users().Create(t.Context(), u); err != nil {
		t.Fatalf("create user: %v", err)
	}
	return u
}

func createAccount(t testing.TB, s storage.Store, userID, providerID string) *storage.Account {
	t.Helper()
	a := &storage.Account{ID: newID("acc"), UserID: userID, ProviderID: providerID,
		ProviderAccountID: newID("ext"), CreatedAt: now(), UpdatedAt: now()}
	if providerID == storage.ProviderCredential {
		a.ProviderAccountID = userID
		a.Password = new("hash-1")
	}
	if err := s.Accounts().Create(t.Context(), a); err != nil {
		t.Fatalf("create account: %v", err)
	}
	return a
}

func createSession(t testing.TB, s storage.Store, userID string, expiresAt time.Time) *storage.Session {
	t.Helper()
	x := &storage.Session{ID: newID("ses"), TokenHash: randomHex(32), UserID: userID, ExpiresAt: expiresAt,
		CreatedAt: now(), UpdatedAt: now(), IPAddress: "203.0.113.7", UserAgent: "storagetest", Persistent: true}
	if err := s.Sessions().Create(t.Context(), x); err != nil {
		t.Fatalf("create session: %v", err)
	}
	return x
}

func createVerification(t testing.TB, s storage.Store, u *storage.User, purpose string, expiresAt time.Time) *storage.Verification {
	t.Helper()
	v := &storage.Verification{ID: newID("ver"), Purpose: purpose, TokenHash: randomHex(32),
		UserID: u.ID, Email: u.Email, ExpiresAt: expiresAt, CreatedAt: now()}
	if err := s.Verifications().Create(t.Context(), v); err != nil {
		t.Fatalf("create verification: %v", err)
	}
	return v
}

// wantErr fails the test unless errors.Is(err, target).
func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantSame fails the test unless got and want render alike; see render.
func wantSame(t testing.TB, what string, got, want any) {
	t.Helper()
	if g, w := render(got), render(want); g != w {
		t.Fatalf("%s:\n got  %s\n want %s", what, g, w)
	}
}

// render prints a record with times as UTC instants, pointers followed and
// byte slices as text, so that two records that mean the same thing print
// the same even when their time.Time values differ in location or
// monotonic reading.
func render(v any) string {
	var b strings.Builder
	renderValue(&b, reflect.ValueOf(v))
	return b.String()
}

var timeType = reflect.TypeFor[time.Time]()

func renderValue(b *strings.Builder, v reflect.Value) {
	switch {
	case !v.IsValid():
		b.WriteString("<nil>")
	case v.Type() == timeType:
		b.WriteString(v.Interface().(time.Time).UTC().Format(time.RFC3339Nano))
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		renderValue(b, v.Elem())
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8:
		fmt.Fprintf(b, "%q", v.Bytes())
	case v.Kind() == reflect.Slice:
		b.WriteString("[")
		for i := range v.Len() {
			if i > 0 {
				b.WriteString(", ")
			}
			renderValue(b, v.Index(i))
		}
		b.WriteString("]")
	case v.Kind() == reflect.Struct:
		b.WriteString("{")
		for i := range v.NumField() {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(v.Type().Field(i).Name + ":")
			renderValue(b, v.Field(i))
		}
		b.WriteString("}")
	default:
		fmt.Fprintf(b, "%#v", v.Interface())
	}
}

// wantUTC fails the test unless every time is in UTC, as drivers return
// them.
func wantUTC(t testing.TB, what string, times ...time.Time) {
	t.Helper()
	for _, tm := range times {
		if tm.Location() != time.UTC {
			t.Fatalf("%s: time %v is in %v, want UTC", what, tm, tm.Location())
		}
	}
}

func createOAuthClient(t testing.TB, s storage.Store) *storage.OAuthClient {
	t.Helper()
	c := &storage.OAuthClient{ID: newID("cli"), SecretHash: randomHex(32), Source: storage.ClientSourcePreregistered,
		Metadata: []byte(`{"redirect_uris":["https://app.example/cb"]}`), CreatedAt: now(), UpdatedAt: now()}
	if err := s.OAuthClients().Create(t.Context(), c); err != nil {
		t.Fatalf("create oauth client: %v", err)
	}
	return c
}

func createOAuthToken(t testing.TB, s storage.Store, clientID, kind, requestID string, expiresAt time.Time) *storage.OAuthToken {
	t.Helper()
	x := &storage.OAuthToken{Kind: kind, Signature: randomHex(32), RequestID: requestID, ClientID: clientID,
		Subject: newID("usr"), Active: true, RequestedAt: now(), ExpiresAt: expiresAt,
		Data: []byte(`{"scopes":["openid"]}`)}
	if err := s.OAuthTokens().Create(t.Context(), x); err != nil {
		t.Fatalf("create oauth token: %v", err)
	}
	return x
}

func putConsent(t testing.TB, s storage.Store, userID, clientID, resource string, scopes ...string) *storage.OAuthConsent {
	t.Helper()
	c := &storage.OAuthConsent{UserID: userID, ClientID: clientID, Resource: resource, Scopes: scopes,
		CreatedAt: now(), UpdatedAt: now()}
	if err := s.OAuthConsents().Put(t.Context(), c); err != nil {
		t.Fatalf("put consent: %v", err)
	}
	return c
}
