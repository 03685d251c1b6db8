package trust

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// FuzzStateJSON: a stored state, however damaged, decodes or fails
// cleanly, and scores within 0–100 with a known level.
func FuzzStateJSON(f *testing.F) {
	m := DefaultModel()
	good, _ := json.Marshal(Recompute(randomEvents(1, 200), m))
	f.Add(good)
	f.Add([]byte(`{"sums":{"allowed":1e308,"denied":1e308},"events":3,"ref":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"sums":{"denied":-5},"firstAt":"0001-01-01T00:00:00Z","lastAt":"9999-12-31T23:59:59Z"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var s State
		if json.Unmarshal(raw, &s) != nil {
			return
		}
		for _, now := range []time.Time{{}, t0, s.LastAt.Add(Day)} {
			b := s.Score(now, m)
			if !(b.Score >= 0 && b.Score <= 100) || b.Level.Rank() < 0 {
				t.Fatalf("score %v level %q from %s", b.Score, b.Level, raw)
			}
		}
		s.Apply(Event{At: t0, Signal: SignalProbe}, m)
	})
}

// FuzzObserve: any observation (the strings and the address come from
// clients) keeps the baseline bounded and persistable.
func FuzzObserve(f *testing.F) {
	f.Add("kavach-sdk/1.0", "mcp:github:issues", "tok", []byte{203, 0, 113, 1}, int64(0), true)
	f.Add("", "", "", []byte{}, int64(-1), false)
	f.Add("\xff\x00", "a:b", "t", []byte{0x20, 1, 0xd, 0xb8, 15: 1}, int64(1<<40), true)
	c := DefaultDetectorConfig()
	c.NewNetwork.Warmup, c.NewUserAgent.Warmup, c.Probing.Warmup, c.TokenSpread.Warmup = Warmup{}, Warmup{}, Warmup{}, Warmup{}
	f.Fuzz(func(t *testing.T, ua, resource, token string, ip []byte, offset int64, denied bool) {
		var b Baseline
		addr, _ := netip.AddrFromSlice(ip)
		for i := range 50 {
			at := t0.Add(time.Duration(offset) + time.Duration(i)*time.Second)
			o := Observation{At: at, IP: addr, UserAgent: ua + string(rune('a'+i%30)), Resource: resource + string(rune('a'+i)),
				TokenID: token, Denied: denied, Allowed: !denied}
			for _, f := range b.Observe(o, t0.Add(time.Hour), c) {
				if f.Detail == "" || f.Severity <= 0 {
					t.Fatalf("finding %+v", f)
				}
			}
		}
		if len(b.UserAgents) > c.NewUserAgent.MaxKnown || len(b.DeniedResources) > c.Probing.Distinct || len(b.Tokens) > c.TokenSpread.MaxTokens {
			t.Fatalf("unbounded: %d %d %d", len(b.UserAgents), len(b.DeniedResources), len(b.Tokens))
		}
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var d Baseline
		if err := json.Unmarshal(raw, &d); err != nil || !reflect.DeepEqual(d, b) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, b, d)
		}
	})
}
