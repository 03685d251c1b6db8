package users

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage/storagetest"
)

// A saturated hasher must answer every sign-in alike: a busy answer for
// real accounts and an "invalid credentials" one for unknown addresses
// would tell an attacker which addresses have accounts.
func TestBusyHasherAnswersAlike(t *testing.T) {
	h := NewPasswordHasher(1000, 1, nil)
	svc := NewService(storagetest.OpenSQLite(t), Config{BaseURL: "http://localhost", Hasher: h, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(svc.Close)
	if _, err := svc.SignUp(context.Background(), SignUpInput{Email: "known@example.com", Password: "violet-anchor-harbor-42"}); err != nil {
		t.Fatal(err)
	}
	if err := h.acquire(context.Background()); err != nil { // hold the only slot
		t.Fatal(err)
	}
	defer h.release()
	for _, email := range []string{"known@example.com", "unknown@example.com", "not-an-address"} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := svc.SignIn(ctx, SignInInput{Email: email, Password: "wrong-password-1"})
		cancel()
		if !errors.Is(err, ErrHasherBusy) {
			t.Errorf("%s: err = %v, want ErrHasherBusy", email, err)
		}
	}
}
