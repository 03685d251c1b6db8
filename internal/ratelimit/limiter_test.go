package ratelimit

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func TestAllow(t *testing.T) {
	type step struct {
		at        time.Duration // since t0
		key       string
		wantOK    bool
		wantRetry time.Duration
	}
	tests := []struct {
		name   string
		limit  int
		window time.Duration
		steps  []step
	}{
		{
			name: "admits up to the limit then refuses until the window ends", limit: 2, window: time.Minute,
			steps: []step{
				{at: 0, key: "a", wantOK: true},
				{at: 10 * time.Second, key: "a", wantOK: true},
				{at: 20 * time.Second, key: "a", wantOK: false, wantRetry: 40 * time.Second},
				{at: 59 * time.Second, key: "a", wantOK: false, wantRetry: time.Second},
				{at: time.Minute, key: "a", wantOK: true},
			},
		},
		{
			name: "window opens at the first request, not on a clock boundary", limit: 1, window: time.Minute,
			steps: []step{
				{at: 50 * time.Second, key: "a", wantOK: true},
				{at: 70 * time.Second, key: "a", wantOK: false, wantRetry: 40 * time.Second},
				{at: 110 * time.Second, key: "a", wantOK: true},
			},
		},
		{
			name: "keys are independent", limit: 1, window: time.Minute,
			steps: []step{
				{at: 0, key: "a", wantOK: true},
				{at: 0, key: "b", wantOK: true},
				{at: 0, key: "a", wantOK: false, wantRetry: time.Minute},
				{at: 0, key: "b", wantOK: false, wantRetry: time.Minute},
			},
		},
		{
			name: "refused requests do not extend the window", limit: 1, window: time.Minute,
			steps: []step{
				{at: 0, key: "a", wantOK: true},
				{at: 30 * time.Second, key: "a", wantOK: false, wantRetry: 30 * time.Second},
				{at: 45 * time.Second, key: "a", wantOK: false, wantRetry: 15 * time.Second},
				{at: time.Minute, key: "a", wantOK: true},
			},
		},
		{
			name: "a new window starts from zero", limit: 2, window: time.Minute,
			steps: []step{
				{at: 0, key: "a", wantOK: true},
				{at: 0, key: "a", wantOK: true},
				{at: 5 * time.Minute, key: "a", wantOK: true},
				{at: 5 * time.Minute, key: "a", wantOK: true},
				{at: 5 * time.Minute, key: "a", wantOK: false, wantRetry: time.Minute},
			},
		},
		{
			name: "clock stepping backwards never asks for more than a window", limit: 1, window: time.Minute,
			steps: []step{
				{at: time.Hour, key: "a", wantOK: true},
				{at: 0, key: "a", wantOK: false, wantRetry: time.Minute},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.limit, tt.window)
			for i, s := range tt.steps {
				ok, retry := l.Allow(s.key, t0.Add(s.at))
				if ok != s.wantOK || retry != s.wantRetry {
					t.Errorf("step %d: Allow(%q, +%v) = %v, %v; want %v, %v", i, s.key, s.at, ok, retry, s.wantOK, s.wantRetry)
				}
			}
		})
	}
}

func TestReset(t *testing.T) {
	l := New(1, time.Minute)
	l.Allow("a", t0)
	l.Allow("b", t0)
	l.Reset("a")
	l.Reset("missing")
	if ok, _ := l.Allow("a", t0); !ok {
		t.Error("Allow after Reset refused")
	}
	if ok, _ := l.Allow("b", t0); ok {
		t.Error("Reset of one key reset another")
	}
}

func TestMemoryIsBounded(t *testing.T) {
	tests := []struct {
		name    string
		maxKeys int
		flood   int
		spacing time.Duration // between requests
		wantLen int
	}{
		{name: "random keys at one instant stop at the cap", maxKeys: 100, flood: 10_000, spacing: 0, wantLen: 100},
		{name: "random keys over time stop at the cap", maxKeys: 100, flood: 10_000, spacing: time.Millisecond, wantLen: 100},
		{name: "expired keys are swept before the cap is reached", maxKeys: 100, flood: 10_000, spacing: time.Second, wantLen: 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewWithMaxKeys(1, time.Minute, tt.maxKeys)
			for i := range tt.flood {
				now := t0.Add(time.Duration(i) * tt.spacing)
				if ok, _ := l.Allow("flood-"+strconv.Itoa(i), now); !ok {
					t.Fatalf("fresh key %d refused", i)
				}
				if n := l.Len(); n > tt.maxKeys {
					t.Fatalf("after %d keys Len() = %d, above the cap %d", i+1, n, tt.maxKeys)
				}
			}
			if n := l.Len(); n != tt.wantLen {
				t.Errorf("Len() = %d, want %d", n, tt.wantLen)
			}
		})
	}
}

func TestSweepDropsExpiredKeys(t *testing.T) {
	l := New(1, time.Minute)
	for i := range 50 {
		l.Allow(strconv.Itoa(i), t0)
	}
	l.Allow("late", t0.Add(time.Minute))
	if n := l.Len(); n != 1 {
		t.Errorf("Len() = %d after every other window ended, want 1", n)
	}
}

func TestEvictionTakesTheOldestWindow(t *testing.T) {
	l := NewWithMaxKeys(1, time.Minute, 2)
	l.Allow("oldest", t0)
	l.Allow("middle", t0.Add(time.Second))
	l.Allow("newest", t0.Add(2*time.Second)) // evicts "oldest"

	tests := []struct {
		name   string
		key    string
		wantOK bool
	}{
		{name: "survivor is still limited", key: "newest", wantOK: false},
		{name: "evicted key starts over", key: "oldest", wantOK: true}, // evicts "middle"
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ok, _ := l.Allow(tt.key, t0.Add(3*time.Second)); ok != tt.wantOK {
				t.Errorf("Allow(%q) = %v, want %v", tt.key, ok, tt.wantOK)
			}
		})
	}
}

func TestConcurrentAllowAdmitsExactlyLimit(t *testing.T) {
	const limit, workers, perWorker = 50, 8, 100
	l := New(limit, time.Minute)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				if ok, _ := l.Allow("shared", t0); ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != limit {
		t.Errorf("admitted %d, want %d", got, limit)
	}
}

func TestNewPanicsOnNonPositiveSettings(t *testing.T) {
	tests := []struct {
		name    string
		limit   int
		window  time.Duration
		maxKeys int
	}{
		{name: "zero limit", limit: 0, window: time.Minute, maxKeys: 1},
		{name: "negative window", limit: 1, window: -time.Second, maxKeys: 1},
		{name: "zero max keys", limit: 1, window: time.Minute, maxKeys: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("NewWithMaxKeys did not panic")
				}
			}()
			NewWithMaxKeys(tt.limit, tt.window, tt.maxKeys)
		})
	}
}

func BenchmarkAllow(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "203.0.113." + strconv.Itoa(i)
	}
	l := New(10, time.Minute)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(keys[i%len(keys)], t0)
			i++
		}
	})
}
