package trust

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sim feeds a Baseline observations on a simulated timeline.
type sim struct {
	t *testing.T
	b Baseline
	c DetectorConfig
}

func newSim(t *testing.T) *sim { return &sim{t: t, c: DefaultDetectorConfig()} }

var (
	homeIP  = netip.MustParseAddr("203.0.113.10")
	homeIP6 = netip.MustParseAddr("2001:db8:1:2::10")
	homeUA  = "kavach-sdk-go/1.4.0"
)

// usual is the observation the simulated agent makes by habit.
func usual(at time.Time) Observation {
	return Observation{At: at, IP: homeIP, UserAgent: homeUA, Allowed: true, Resource: "mcp:github:issues", TokenID: "tok-1"}
}

// history makes perDay observations a day for days days from start,
// spread over 09:00–17:00 UTC, from mk (usual when nil). It fails the
// test on any finding: a habit must not be anomalous.
func (s *sim) history(start time.Time, days, perDay int, mk func(time.Time) Observation) time.Time {
	s.t.Helper()
	if mk == nil {
		mk = usual
	}
	var at time.Time
	start = start.Truncate(Day) // midnight UTC
	for d := range days {
		for i := range perDay {
			at = start.Add(time.Duration(d)*Day + 9*time.Hour + time.Duration(i)*(8*time.Hour)/time.Duration(perDay))
			if f := s.b.Observe(mk(at), at, s.c); f != nil {
				s.t.Fatalf("history at %v: %+v", at, f)
			}
		}
	}
	return at
}

// observe returns the findings of one observation, of the given kind.
func (s *sim) observe(o Observation, kind FindingKind) []Finding {
	var out []Finding
	for _, f := range s.b.Observe(o, o.At, s.c) {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

func (s *sim) wantFire(o Observation, kind FindingKind) Finding {
	s.t.Helper()
	f := s.observe(o, kind)
	if len(f) != 1 {
		s.t.Fatalf("%+v: %d %s findings, want 1: %+v", o, len(f), kind, f)
	}
	if f[0].At != o.At.UTC() || f[0].Detail == "" || f[0].Severity <= 0 {
		s.t.Fatalf("finding %+v", f[0])
	}
	return f[0]
}

func (s *sim) wantQuiet(o Observation, kind FindingKind) {
	s.t.Helper()
	if f := s.observe(o, kind); len(f) != 0 {
		s.t.Fatalf("%+v: unexpected %+v", o, f)
	}
}

// onlyBurst disables every detector but the one tested, so that other
// detectors' findings cannot hide or fake a result.
func (s *sim) only(kind FindingKind) {
	c := &s.c
	c.Burst.Disabled = kind != FindingBurst
	c.NewNetwork.Disabled = kind != FindingNewNetwork
	c.NewUserAgent.Disabled = kind != FindingNewUserAgent
	c.UnusualHour.Disabled = kind != FindingUnusualHour
	c.DenialRise.Disabled = kind != FindingDenialRise
	c.Probing.Disabled = kind != FindingProbing
	c.TokenSpread.Disabled = kind != FindingTokenSpread
}

// at is a time of day (UTC) on the given day after t0's.
func at(day int, hh, mm, ss int) time.Time {
	return t0.Truncate(Day).Add(time.Duration(day)*Day + time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(ss)*time.Second)
}

// minute makes n observations within the minute starting at start and
// returns the burst findings.
func (s *sim) minute(start time.Time, n int) []Finding {
	var out []Finding
	for i := range n {
		o := usual(start.Add(time.Duration(i) * (time.Minute / time.Duration(n))))
		out = append(out, s.observe(o, FindingBurst)...)
	}
	return out
}

// busyHistory: for three days, 60 busy minutes a day of 10 calls each.
func (s *sim) busyHistory() {
	for d := range 3 {
		for m := range 60 {
			if f := s.minute(at(d, 10, m, 0), 10); len(f) != 0 {
				s.t.Fatalf("history: %+v", f)
			}
		}
	}
}

func TestBurst(t *testing.T) {
	t.Run("fires once above ten times the usual minute", func(t *testing.T) {
		s := newSim(t)
		s.only(FindingBurst)
		s.busyHistory()
		f := s.minute(at(3, 10, 0, 0), 150)
		if len(f) != 1 || !strings.Contains(f[0].Detail, "101 calls") {
			t.Fatalf("findings %+v", f)
		}
		// Within the cooldown, another burst is not reported again.
		if f := s.minute(at(3, 10, 30, 0), 150); len(f) != 0 {
			t.Fatalf("within the cooldown: %+v", f)
		}
		if f := s.minute(at(3, 11, 31, 0), 400); len(f) != 1 {
			t.Fatalf("after the cooldown: %+v", f)
		}
	})
	t.Run("quiet below the factor", func(t *testing.T) {
		s := newSim(t)
		s.only(FindingBurst)
		s.busyHistory()
		if f := s.minute(at(3, 10, 0, 0), 95); len(f) != 0 {
			t.Fatalf("findings %+v", f)
		}
	})
	t.Run("quiet below the floor", func(t *testing.T) {
		s := newSim(t)
		s.only(FindingBurst)
		for d := range 3 {
			for m := range 100 {
				s.minute(at(d, 10, m/2, 0).Add(time.Duration(m%2)*time.Hour), 2)
			}
		}
		// 50 is 25 times the usual 2, but under one call a second.
		if f := s.minute(at(3, 10, 0, 0), 50); len(f) != 0 {
			t.Fatalf("findings %+v", f)
		}
		if f := s.minute(at(3, 11, 0, 0), 61); len(f) != 1 {
			t.Fatalf("61 calls: %+v", f)
		}
	})
	t.Run("an agent that always works in bursts", func(t *testing.T) {
		s := newSim(t)
		s.only(FindingBurst)
		// 300 calls in one minute, once an hour, for three days: idle
		// minutes do not drag the average down.
		for h := range 72 {
			s.minute(t0.Add(time.Duration(h)*time.Hour), 300)
		}
		if f := s.minute(t0.Add(72*time.Hour), 300); len(f) != 0 {
			t.Fatalf("findings %+v", f)
		}
	})
	t.Run("warmup", func(t *testing.T) {
		s := newSim(t)
		s.only(FindingBurst)
		// A new agent: one busy hour, then a huge minute on its first day.
		for m := range 60 {
			s.minute(at(0, 10, m, 0), 10)
		}
		if f := s.minute(at(0, 12, 0, 0), 500); len(f) != 0 {
			t.Fatalf("on the first day: %+v", f)
		}
		// Old enough and with enough calls, but too few busy minutes.
		s = newSim(t)
		s.only(FindingBurst)
		s.minute(at(0, 10, 0, 0), 50)
		s.minute(at(0, 10, 1, 0), 50)
		s.minute(at(0, 10, 2, 0), 50)
		s.minute(at(0, 10, 3, 0), 50)
		s.minute(at(0, 10, 4, 0), 50)
		if f := s.minute(at(2, 10, 0, 0), 5000); len(f) != 0 {
			t.Fatalf("after 5 busy minutes: %+v", f)
		}
	})
}

func TestNewNetwork(t *testing.T) {
	warm := func(t *testing.T) (*sim, time.Time) {
		s := newSim(t)
		s.only(FindingNewNetwork)
		i := 0
		end := s.history(t0, 4, 20, func(at time.Time) Observation {
			o := usual(at)
			if i++; i%2 == 0 {
				o.IP = homeIP6
			}
			return o
		})
		return s, end.Add(time.Minute)
	}
	t.Run("fires on a new network", func(t *testing.T) {
		s, now := warm(t)
		o := usual(now)
		o.IP = netip.MustParseAddr("198.51.100.7")
		f := s.wantFire(o, FindingNewNetwork)
		if !strings.Contains(f.Detail, "198.51.100.0/24") {
			t.Fatalf("detail %q", f.Detail)
		}
		// Known from now on.
		o.At = now.Add(time.Minute)
		s.wantQuiet(o, FindingNewNetwork)
		o.IP = netip.MustParseAddr("2001:db8:ffff::1")
		o.At = now.Add(2 * time.Minute)
		s.wantFire(o, FindingNewNetwork)
	})
	t.Run("quiet in a known network", func(t *testing.T) {
		s, now := warm(t)
		for i, ip := range []string{"203.0.113.250", "::ffff:203.0.113.11", "2001:db8:1:ffff::1", "2001:db8:1::1%eth0"} {
			o := usual(now.Add(time.Duration(i) * time.Minute))
			o.IP = netip.MustParseAddr(ip)
			s.wantQuiet(o, FindingNewNetwork)
		}
		o := usual(now.Add(time.Hour))
		o.IP = netip.Addr{} // unknown address
		s.wantQuiet(o, FindingNewNetwork)
	})
	t.Run("warmup", func(t *testing.T) {
		s := newSim(t)
		s.only(FindingNewNetwork)
		end := s.history(t0, 2, 100, nil) // 200 calls but only two days
		o := usual(end.Add(time.Minute))
		o.IP = netip.MustParseAddr("198.51.100.7")
		s.wantQuiet(o, FindingNewNetwork)
		// Learnt during the warmup: no finding later either.
		end = s.history(t0.Add(2*Day), 2, 10, nil)
		o.At = end.Add(time.Minute)
		s.wantQuiet(o, FindingNewNetwork)
	})
	t.Run("an agent that churns through networks", func(t *testing.T) {
		s := newSim(t)
		s.only(FindingNewNetwork)
		// A serverless fleet: every hour a new /24, for a week.
		n := 0
		next := func(at time.Time) Observation {
			o := usual(at)
			o.IP = netip.AddrFrom4([4]byte{198, 18, byte(n / 10), 1})
			n++
			return o
		}
		s.c.NewNetwork.Warmup = Warmup{} // fire from the start, to see churn alone silence it
		var fired int
		for h := range 7 * 24 {
			for i := range 10 {
				at := t0.Add(time.Duration(h)*time.Hour + time.Duration(i)*time.Minute)
				fired += len(s.observe(next(at), FindingNewNetwork))
			}
		}
		// The first 32 are reported (the set is not full yet); none after.
		if fired != 32 || len(s.b.Networks) != 32 {
			t.Fatalf("%d findings, %d networks known", fired, len(s.b.Networks))
		}
		// When the forgotten network is older than the churn window, a new
		// one is news again.
		o := usual(t0.Add(30 * Day))
		o.IP = netip.MustParseAddr("192.0.2.1")
		s.wantFire(o, FindingNewNetwork)
	})
}

func TestNewUserAgent(t *testing.T) {
	t.Run("fires on a new user agent, once", func(t *testing.T) {
		s := newSim(t)
		s.only(FindingNewUserAgent)
		end := s.history(t0, 4, 20, nil)
		o := usual(end.Add(time.Minute))
		o.UserAgent = "curl/8.5.0"
		f := s.wantFire(o, FindingNewUserAgent)
		if !strings.Contains(f.Detail, `"curl/8.5.0"`) {
			t.Fatalf("detail %q", f.Detail)
		}
		o.At = o.At.Add(time.Second)
		s.wantQuiet(o, FindingNewUserAgent)
		o.UserAgent = homeUA
		s.wantQuiet(o, FindingNewUserAgent)
		o.UserAgent = "" // unknown
		s.wantQuiet(o, FindingNewUserAgent)
	})
	t.Run("warmup", func(t *testing.T) {
		s := newSim(t)
		s.only(FindingNewUserAgent)
		end := s.history(t0, 4, 10, nil) // four days but only 40 calls
		o := usual(end.Add(time.Minute))
		o.UserAgent = "curl/8.5.0"
		s.wantQuiet(o, FindingNewUserAgent)
	})
	t.Run("a long user agent is clipped in the detail", func(t *testing.T) {
		s := newSim(t)
		s.only(FindingNewUserAgent)
		s.c.NewUserAgent.Warmup = Warmup{}
		s.wantFire(usual(t0), FindingNewUserAgent)
		o := usual(t0.Add(time.Second))
		o.UserAgent = strings.Repeat("é", 500)
		f := s.wantFire(o, FindingNewUserAgent)
		if len(f.Detail) > 200 || !strings.HasSuffix(f.Detail, `…"`) {
			t.Fatalf("detail %q", f.Detail)
		}
	})
}

func TestUnusualHour(t *testing.T) {
	// Office hours: 09:00–17:00 UTC on weekdays.
	office := func(t *testing.T, weeks int) (*sim, int) {
		s := newSim(t)
		s.only(FindingUnusualHour)
		for d := range weeks * 7 {
			if d%7 >= 5 { // t0 is a Monday
				continue
			}
			s.history(t0.Add(time.Duration(d)*Day), 1, 40, nil)
		}
		return s, weeks * 7
	}
	t.Run("fires at 3 a.m., once per hour", func(t *testing.T) {
		s, day := office(t, 3)
		f := s.wantFire(usual(at(day, 3, 5, 0)), FindingUnusualHour)
		if !strings.Contains(f.Detail, "03:00") {
			t.Fatalf("detail %q", f.Detail)
		}
		s.wantQuiet(usual(at(day, 3, 40, 0)), FindingUnusualHour)
		s.wantFire(usual(at(day, 4, 1, 0)), FindingUnusualHour)
	})
	t.Run("quiet in office hours and just after", func(t *testing.T) {
		s, day := office(t, 3)
		s.wantQuiet(usual(at(day, 12, 0, 0)), FindingUnusualHour)
		// Its last calls are at 16:48: 17:30 is next to its hours.
		s.wantQuiet(usual(at(day, 17, 30, 0)), FindingUnusualHour)
		s.wantFire(usual(at(day, 20, 30, 0)), FindingUnusualHour)
	})
	t.Run("warmup", func(t *testing.T) {
		s, day := office(t, 1) // one week is too short
		s.wantQuiet(usual(at(day+3, 3, 0, 0)), FindingUnusualHour)
	})
	t.Run("an agent active around the clock", func(t *testing.T) {
		s := newSim(t)
		s.only(FindingUnusualHour)
		for h := range 21 * 24 {
			s.wantQuiet(usual(t0.Add(time.Duration(h)*time.Hour+17*time.Minute)), FindingUnusualHour)
		}
		for h := range 24 {
			s.wantQuiet(usual(at(21, h, 50, 0)), FindingUnusualHour)
		}
	})
}

func TestDenialRise(t *testing.T) {
	// Two days of decisions, one in fifty denied.
	warm := func(t *testing.T) (*sim, time.Time) {
		s := newSim(t)
		s.only(FindingDenialRise)
		i := 0
		end := s.history(t0, 2, 200, func(at time.Time) Observation {
			o := usual(at)
			if i++; i%50 == 0 {
				o.Allowed, o.Denied = false, true
			}
			return o
		})
		return s, end
	}
	denied := func(at time.Time) Observation {
		o := usual(at)
		o.Allowed, o.Denied = false, true
		return o
	}
	t.Run("fires once on a run of denials, re-arms after", func(t *testing.T) {
		s, now := warm(t)
		var fired []Finding
		for i := range 30 {
			fired = append(fired, s.observe(denied(now.Add(time.Duration(i+1)*time.Second)), FindingDenialRise)...)
		}
		if len(fired) != 1 {
			t.Fatalf("findings %+v", fired)
		}
		if !strings.Contains(fired[0].Detail, "recent decisions denied") {
			t.Fatalf("detail %q", fired[0].Detail)
		}
		now = s.history(now.Add(Day).Truncate(Day), 1, 100, nil)
		if s.b.Denials.Alarm {
			t.Fatal("not re-armed after 100 allowed decisions")
		}
		for i := range 10 {
			fired = append(fired, s.observe(denied(now.Add(time.Duration(i+1)*time.Second)), FindingDenialRise)...)
		}
		if len(fired) != 2 {
			t.Fatalf("findings %+v", fired)
		}
	})
	t.Run("quiet for a few denials", func(t *testing.T) {
		s, now := warm(t)
		for i := range 4 {
			s.wantQuiet(denied(now.Add(time.Duration(i+1)*time.Second)), FindingDenialRise)
		}
	})
	t.Run("quiet for an agent often denied", func(t *testing.T) {
		s := newSim(t)
		s.only(FindingDenialRise)
		i := 0
		s.history(t0, 4, 200, func(at time.Time) Observation {
			o := usual(at)
			if i++; i%2 == 0 {
				o.Allowed, o.Denied = false, true
			}
			return o
		})
	})
	t.Run("warmup", func(t *testing.T) {
		s := newSim(t)
		s.only(FindingDenialRise)
		s.history(t0, 1, 20, nil)
		for i := range 50 {
			s.wantQuiet(denied(at(0, 18, 0, i)), FindingDenialRise)
		}
	})
	t.Run("other observations do not count", func(t *testing.T) {
		s, now := warm(t)
		before := s.b.Denials
		o := usual(now.Add(time.Second))
		o.Allowed = false // a token presented to a resource server, say
		s.wantQuiet(o, FindingDenialRise)
		if s.b.Denials != before {
			t.Fatalf("denials %+v, then %+v", before, s.b.Denials)
		}
	})
}

func TestProbing(t *testing.T) {
	warm := func(t *testing.T) (*sim, time.Time) {
		s := newSim(t)
		s.only(FindingProbing)
		return s, s.history(t0, 1, 30, nil).Add(time.Minute)
	}
	probe := func(at time.Time, i int) Observation {
		o := usual(at)
		o.Allowed, o.Denied = false, true
		o.Resource = fmt.Sprintf("mcp:admin:users:%d", i)
		return o
	}
	t.Run("fires at the 20th distinct resource", func(t *testing.T) {
		s, now := warm(t)
		for i := range 19 {
			s.wantQuiet(probe(now.Add(time.Duration(i)*10*time.Second), i), FindingProbing)
		}
		f := s.wantFire(probe(now.Add(200*time.Second), 19), FindingProbing)
		if !strings.Contains(f.Detail, "20 different resources") {
			t.Fatalf("detail %q", f.Detail)
		}
		// Counting starts afresh.
		s.wantQuiet(probe(now.Add(201*time.Second), 20), FindingProbing)
		if len(s.b.DeniedResources) != 1 {
			t.Fatalf("remembered %d", len(s.b.DeniedResources))
		}
	})
	t.Run("quiet for retries of one resource", func(t *testing.T) {
		s, now := warm(t)
		for i := range 200 {
			s.wantQuiet(probe(now.Add(time.Duration(i)*time.Second), 7), FindingProbing)
		}
		if len(s.b.DeniedResources) != 1 || s.b.DeniedResources[0].Count != 200 {
			t.Fatalf("remembered %+v", s.b.DeniedResources)
		}
	})
	t.Run("quiet when spread out", func(t *testing.T) {
		s, now := warm(t)
		for i := range 100 {
			s.wantQuiet(probe(now.Add(time.Duration(i)*time.Minute), i), FindingProbing)
		}
	})
	t.Run("quiet for allowed resources", func(t *testing.T) {
		s, now := warm(t)
		for i := range 100 {
			o := probe(now.Add(time.Duration(i)*time.Second), i)
			o.Allowed, o.Denied = true, false
			s.wantQuiet(o, FindingProbing)
		}
	})
	t.Run("warmup", func(t *testing.T) {
		s := newSim(t)
		s.only(FindingProbing)
		// A new agent's operator discovering what it may do.
		for i := range 40 {
			s.wantQuiet(probe(t0.Add(time.Duration(i)*time.Second), i), FindingProbing)
		}
		if len(s.b.DeniedResources) != 20 {
			t.Fatalf("remembered %d during the warmup", len(s.b.DeniedResources))
		}
		// Past the warmup, probing that goes on is reported.
		for i := range 19 {
			s.wantQuiet(probe(t0.Add(time.Hour+time.Duration(i)*time.Second), 100+i), FindingProbing)
		}
		s.wantFire(probe(t0.Add(time.Hour+time.Minute), 200), FindingProbing)
	})
}

func TestTokenSpread(t *testing.T) {
	warm := func(t *testing.T) (*sim, time.Time) {
		s := newSim(t)
		s.only(FindingTokenSpread)
		return s, s.history(t0, 1, 30, nil).Add(time.Minute)
	}
	from := func(at time.Time, ip, token string) Observation {
		o := usual(at)
		o.IP, o.TokenID = netip.MustParseAddr(ip), token
		return o
	}
	t.Run("fires for a token in two distant networks", func(t *testing.T) {
		s, now := warm(t)
		f := s.wantFire(from(now, "198.51.100.7", "tok-1"), FindingTokenSpread)
		if !strings.Contains(f.Detail, "203.0.0.0/16") || !strings.Contains(f.Detail, "198.51.0.0/16") {
			t.Fatalf("detail %q", f.Detail)
		}
		// Back and forth within the window: reported once.
		s.wantQuiet(from(now.Add(time.Minute), "203.0.113.10", "tok-1"), FindingTokenSpread)
		s.wantQuiet(from(now.Add(2*time.Minute), "198.51.100.7", "tok-1"), FindingTokenSpread)
	})
	t.Run("fires for IPv6", func(t *testing.T) {
		s, now := warm(t)
		s.wantQuiet(from(now, "2001:db8:1::1", "tok-6"), FindingTokenSpread)
		s.wantQuiet(from(now.Add(time.Second), "2001:db8:ffff::1", "tok-6"), FindingTokenSpread) // same /32
		s.wantFire(from(now.Add(2*time.Second), "2001:db9::1", "tok-6"), FindingTokenSpread)
	})
	t.Run("quiet", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			second Observation
		}{
			{"same /16", from(t0, "203.0.200.1", "tok-1")},
			{"after the window", from(t0.Add(6*time.Minute), "198.51.100.7", "tok-1")},
			{"another token", from(t0, "198.51.100.7", "tok-2")},
			{"another family", from(t0, "2001:db9::1", "tok-1")},
			{"a private address", from(t0, "10.1.2.3", "tok-1")},
			{"shared CGNAT space", from(t0, "100.64.1.2", "tok-1")},
			{"loopback", from(t0, "127.0.0.1", "tok-1")},
			{"no token", from(t0, "198.51.100.7", "")},
		} {
			t.Run(c.name, func(t *testing.T) {
				s, now := warm(t)
				s.wantQuiet(from(now, "203.0.113.10", "tok-1"), FindingTokenSpread)
				o := c.second
				o.At = now.Add(o.At.Sub(t0))
				s.wantQuiet(o, FindingTokenSpread)
			})
		}
	})
	t.Run("warmup", func(t *testing.T) {
		s := newSim(t)
		s.only(FindingTokenSpread)
		// The operator tries the token from a laptop, then deploys it.
		s.wantQuiet(from(t0, "198.51.100.7", "tok-1"), FindingTokenSpread)
		s.wantQuiet(from(t0.Add(time.Minute), "203.0.113.10", "tok-1"), FindingTokenSpread)
	})
}

// randomObservations is an agent's life with habits and incidents, so
// that every detector has something to say.
func randomObservations(seed uint64, n int) []Observation {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]Observation, 0, n)
	at := t0
	ip := func(k int) netip.Addr {
		if k%3 == 0 {
			return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(k), 15: 1})
		}
		return netip.AddrFrom4([4]byte{198, byte(k % 7), byte(k), 1})
	}
	for len(out) < n {
		o := Observation{Allowed: true, Resource: fmt.Sprintf("r:%d", r.IntN(10)), TokenID: fmt.Sprintf("t%d", r.IntN(5)),
			UserAgent: fmt.Sprintf("ua/%d", r.IntN(3)), IP: ip(r.IntN(6))}
		switch x := r.IntN(1000); {
		case x < 900: // a call in a working session
			at = at.Add(time.Duration(1+r.IntN(10)) * time.Second)
		case x < 990: // a pause
			at = at.Add(time.Duration(1+r.IntN(30)) * time.Minute)
		case x < 996: // a night, or a weekend
			at = at.Add(time.Duration(8+r.IntN(60)) * time.Hour)
		case x < 997: // a storm of calls
			for range 200 {
				at = at.Add(200 * time.Millisecond)
				o.At = at
				out = append(out, o)
			}
		case x < 998: // probing
			for i := range 30 {
				at = at.Add(time.Second)
				out = append(out, Observation{At: at, Denied: true, Resource: fmt.Sprintf("admin:%d", i), IP: o.IP})
			}
		default: // something new
			o.IP, o.UserAgent = ip(10+r.IntN(200)), fmt.Sprintf("ua/%d", r.IntN(100))
		}
		if r.IntN(20) == 0 {
			o.Allowed, o.Denied = false, true
		}
		o.At = at
		out = append(out, o)
	}
	return out[:n]
}

func TestObserveDeterministicAndPersistable(t *testing.T) {
	c := DefaultDetectorConfig()
	obs := randomObservations(1, 20_000)
	var a, b Baseline
	var fa, fb []Finding
	for i, o := range obs {
		fa = append(fa, a.Observe(o, o.At, c)...)
		if i%97 == 0 {
			raw, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			var d Baseline
			if err := json.Unmarshal(raw, &d); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(d, b) {
				t.Fatalf("round trip changed the baseline:\n%+v\n%+v", b, d)
			}
			b = d
		}
		fb = append(fb, b.Observe(o, o.At, c)...)
	}
	if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(fa, fb) {
		t.Fatal("JSON round trips changed the outcome")
	}
	kinds := map[FindingKind]int{}
	for _, f := range fa {
		kinds[f.Kind]++
	}
	t.Logf("findings: %v", kinds)
	if len(kinds) < 6 {
		t.Fatalf("the random walk exercises too few detectors: %v", kinds)
	}
	// Bounded memory, whatever the agent does.
	if len(a.Networks) > c.NewNetwork.MaxKnown || len(a.UserAgents) > c.NewUserAgent.MaxKnown ||
		len(a.Tokens) > c.TokenSpread.MaxTokens || len(a.DeniedResources) > c.Probing.Distinct {
		t.Fatalf("sizes %d %d %d %d", len(a.Networks), len(a.UserAgents), len(a.Tokens), len(a.DeniedResources))
	}
	raw, _ := json.Marshal(a)
	if len(raw) > 6<<10 {
		t.Fatalf("a baseline encodes to %d bytes", len(raw))
	}
}

func TestObserveTimes(t *testing.T) {
	c := DefaultDetectorConfig()
	var b Baseline
	b.Observe(usual(at(1, 10, 0, 0)), at(1, 10, 0, 0), c)
	// Older than the latest: taken as the latest.
	b.Observe(usual(at(0, 10, 0, 0)), at(1, 10, 0, 1), c)
	if b.LastAt != at(1, 10, 0, 0) || b.FirstAt != at(1, 10, 0, 0) || b.Observations != 2 {
		t.Fatalf("times %v %v", b.FirstAt, b.LastAt)
	}
	// Ahead of now: taken as now. Zero: now.
	b.Observe(usual(at(5, 0, 0, 0)), at(2, 0, 0, 0), c)
	if b.LastAt != at(2, 0, 0, 0) {
		t.Fatalf("last %v", b.LastAt)
	}
	b.Observe(Observation{}, at(3, 0, 0, 0).In(time.FixedZone("X", 3600)), c)
	if b.LastAt != at(3, 0, 0, 0) || b.LastAt.Location() != time.UTC {
		t.Fatalf("last %v", b.LastAt)
	}
}

func TestDetectorConfigValidate(t *testing.T) {
	if err := DefaultDetectorConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		field  string
		change func(*DetectorConfig)
	}{
		{"burst.alpha", func(c *DetectorConfig) { c.Burst.Alpha = 0 }},
		{"burst.factor", func(c *DetectorConfig) { c.Burst.Factor = 0.5 }},
		{"burst.floor", func(c *DetectorConfig) { c.Burst.Floor = 0 }},
		{"burst.warmup", func(c *DetectorConfig) { c.Burst.Warmup.Age = -1 }},
		{"burst.severity", func(c *DetectorConfig) { c.Burst.Severity = 0 }},
		{"newNetwork.ipv4Bits", func(c *DetectorConfig) { c.NewNetwork.IPv4Bits = 33 }},
		{"newNetwork.ipv6Bits", func(c *DetectorConfig) { c.NewNetwork.IPv6Bits = 0 }},
		{"newNetwork.maxKnown", func(c *DetectorConfig) { c.NewNetwork.MaxKnown = 5000 }},
		{"newUserAgent.maxKnown", func(c *DetectorConfig) { c.NewUserAgent.MaxKnown = 0 }},
		{"newUserAgent.severity", func(c *DetectorConfig) { c.NewUserAgent.Severity = 11 }},
		{"unusualHour.maxShare", func(c *DetectorConfig) { c.UnusualHour.MaxShare = 1 }},
		{"denialRise.shortAlpha", func(c *DetectorConfig) { c.DenialRise.ShortAlpha = c.DenialRise.LongAlpha }},
		{"denialRise.minRise", func(c *DetectorConfig) { c.DenialRise.MinRise = zero / zero }},
		{"probing.window", func(c *DetectorConfig) { c.Probing.Window = 0 }},
		{"probing.distinct", func(c *DetectorConfig) { c.Probing.Distinct = 1 }},
		{"tokenSpread.ipv4Bits", func(c *DetectorConfig) { c.TokenSpread.IPv4Bits = 0 }},
		{"tokenSpread.maxTokens", func(c *DetectorConfig) { c.TokenSpread.MaxTokens = 0 }},
	} {
		cfg := DefaultDetectorConfig()
		c.change(&cfg)
		err := cfg.Validate()
		if !errors.Is(err, ErrInvalidDetectorConfig) || !strings.Contains(err.Error(), c.field+" ") {
			t.Errorf("%s: Validate() = %v", c.field, err)
		}
	}
}

func TestFindingEvent(t *testing.T) {
	f := Finding{Kind: FindingProbing, At: t0, Severity: 2}
	if e := f.Event(); e != (Event{At: t0, Signal: SignalAnomaly, Severity: 2}) {
		t.Fatalf("event %+v", e)
	}
}
