package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

// BenchSessionGetByTokenHash measures the session lookup behind getSession
// when the cache misses. Drivers call it from their
// BenchmarkSessionGetByTokenHash.
func BenchSessionGetByTokenHash(b *testing.B, s storage.Store) {
	u := createUser(b, s)
	// Some other rows, so the lookup goes through the index.
	for range 100 {
		createSession(b, s, u.ID, now().Add(time.Hour))
	}
	x := createSession(b, s, u.ID, now().Add(time.Hour))
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sessions().GetByTokenHash(ctx, x.TokenHash); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchUserCreate measures one sign-up insert. Drivers call it from their
// BenchmarkUserCreate.
func BenchUserCreate(b *testing.B, s storage.Store) {
	ctx := b.Context()
	prefix := randomHex(4)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		id := fmt.Sprintf("usr_%s_%d", prefix, i)
		if err := s.Users().Create(ctx, &storage.User{ID: id, Email: id + "@example.com"}); err != nil {
			b.Fatal(err)
		}
	}
}
