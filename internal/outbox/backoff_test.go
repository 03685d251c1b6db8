package outbox

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	cases := []struct {
		failures int
		want     time.Duration
	}{
		{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {9, 256 * time.Second},
		{10, MaxBackoff}, {1000, MaxBackoff},
	}
	for _, c := range cases {
		if got := backoff(time.Second, c.failures); got != c.want {
			t.Errorf("backoff(1s, %d) = %v, want %v", c.failures, got, c.want)
		}
	}
}
