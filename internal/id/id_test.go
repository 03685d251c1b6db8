package id

import (
	"strings"
	"testing"
)

func TestNewIsPrefixedAndUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		v := New("usr")
		if !strings.HasPrefix(v, "usr_") || len(v) != 4+26 {
			t.Fatalf("bad id %q", v)
		}
		if seen[v] {
			t.Fatalf("duplicate id %q", v)
		}
		seen[v] = true
	}
}

func TestSecretAndHash(t *testing.T) {
	s := Secret()
	if len(s) != 43 {
		t.Fatalf("secret length %d", len(s))
	}
	if Secret() == s {
		t.Fatal("two secrets are equal")
	}
	if h := Hash("abc"); h != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("hash %s", h)
	}
}
