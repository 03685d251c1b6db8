package agents

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests must not depend on the machine's zone database
)

func ptr[T any](v T) *T { return &v }

func TestConstraintsValidate(t *testing.T) {
	window := func(start, end, zone string) Constraints {
		return Constraints{TimeWindows: []TimeWindow{{Start: start, End: end, Zone: zone}}}
	}
	rule := func(r ArgumentRule) Constraints { return Constraints{Arguments: []ArgumentRule{r}} }
	tests := []struct {
		name    string
		c       Constraints
		wantErr string // a fragment of the error; "" for valid
	}{
		{"zero", Constraints{}, ""},
		{"everything", Constraints{
			RateLimits:      []RateLimit{{PerMinute, 10}, {PerHour, 100}, {PerDay, 1000}},
			Arguments:       []ArgumentRule{{Pointer: "/repo", Regex: "[a-z]+/[a-z]+", Required: true}},
			TimeWindows:     []TimeWindow{{Days: []time.Weekday{time.Monday}, Start: "09:00", End: "17:00", Zone: "Europe/Berlin"}},
			IPAllow:         []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "::1"},
			RequireApproval: true,
			Inherited:       []Condition{{IPAllow: []string{"10.1.0.0/16"}}},
		}, ""},

		{"unknown rate window", Constraints{RateLimits: []RateLimit{{"week", 1}}}, "not minute, hour or day"},
		{"zero rate max", Constraints{RateLimits: []RateLimit{{PerHour, 0}}}, "at least 1"},
		{"two limits per window", Constraints{RateLimits: []RateLimit{{PerHour, 1}, {PerHour, 2}}}, "a second limit"},

		{"whole day", window("00:00", "24:00", ""), ""},
		{"across midnight", window("22:00", "06:00", "Asia/Kolkata"), ""},
		{"start equals end", window("09:00", "09:00", ""), "start equals end"},
		{"start at 24:00", window("24:00", "06:00", ""), "not a time of day"},
		{"hour 25", window("09:00", "25:00", ""), "not a time of day"},
		{"minute 60", window("09:60", "10:00", ""), "not a time of day"},
		{"no leading zero", window("9:00", "17:00", ""), "not HH:MM"},
		{"seconds", window("09:00:00", "17:00", ""), "not HH:MM"},
		{"unknown zone", window("09:00", "17:00", "Mars/Olympus_Mons"), "zone"},
		{"server local zone", window("09:00", "17:00", "Local"), "depends on the server"},
		{"bad weekday", Constraints{TimeWindows: []TimeWindow{{Days: []time.Weekday{7}, Start: "09:00", End: "10:00"}}}, "day 7"},

		{"bad CIDR", Constraints{IPAllow: []string{"10.0.0.0/33"}}, "ipAllow[0]"},
		{"host bits", Constraints{IPAllow: []string{"10.0.0.1/8"}}, "did you mean 10.0.0.0/8"},
		{"not an address", Constraints{IPAllow: []string{"localhost"}}, "ipAllow[0]"},
		{"address with zone", Constraints{IPAllow: []string{"fe80::1%eth0"}}, "has a zone"},

		{"rule checks nothing", rule(ArgumentRule{Pointer: "/a"}), "checks nothing"},
		{"required only", rule(ArgumentRule{Pointer: "/a", Required: true}), ""},
		{"pointer without slash", rule(ArgumentRule{Pointer: "a", Required: true}), "must be empty or start with '/'"},
		{"pointer bad escape", rule(ArgumentRule{Pointer: "/a~2", Required: true}), "'~' must be followed by 0 or 1"},
		{"pointer trailing tilde", rule(ArgumentRule{Pointer: "/a~", Required: true}), "'~' must be followed by 0 or 1"},
		{"invalid regex", rule(ArgumentRule{Pointer: "/a", Regex: "("}), "regex"},
		{"regex escaping its anchors", rule(ArgumentRule{Pointer: "/a", Regex: "a)|(b"}), "regex"},
		{"unterminated quote swallowing the anchors", rule(ArgumentRule{Pointer: "/a", Regex: `\Qa`}), "regex"},
		{"backreference is not RE2", rule(ArgumentRule{Pointer: "/a", Regex: `(a)\1`}), "regex"},
		{"regex too long", rule(ArgumentRule{Pointer: "/a", Regex: strings.Repeat("a", MaxRegexBytes+1)}), "longer than"},
		{"regex and range", rule(ArgumentRule{Pointer: "/a", Regex: "a", Min: ptr(1.0)}), "a string (regex) and a number"},
		{"empty enum", rule(ArgumentRule{Pointer: "/a", Enum: []any{}}), "enum must list"},
		{"enum with an object", rule(ArgumentRule{Pointer: "/a", Enum: []any{map[string]any{}}}), "not a JSON scalar"},
		{"enum with a bad json.Number", rule(ArgumentRule{Pointer: "/a", Enum: []any{jsonNumber("01")}}), "not a JSON number"},
		{"min above max", rule(ArgumentRule{Pointer: "/a", Min: ptr(2.0), Max: ptr(1.0)}), "min is greater than max"},
		{"NaN bound", rule(ArgumentRule{Pointer: "/a", Max: ptr(nan())}), "not a finite number"},

		{"empty inherited condition", Constraints{Inherited: []Condition{{}}}, "empty condition"},
		{"bad inherited window", Constraints{Inherited: []Condition{{TimeWindows: []TimeWindow{{Start: "x", End: "y"}}}}}, "inherited[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalidConstraints) {
				t.Errorf("error does not wrap ErrInvalidConstraints")
			}
		})
	}
}

func compile(t *testing.T, c Constraints) *CompiledConstraints {
	t.Helper()
	cc, err := c.Compile()
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return cc
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestCheckTime(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			panic(err)
		}
		return v
	}
	weekdays := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	office := TimeWindow{Days: weekdays, Start: "09:00", End: "17:00", Zone: "America/New_York"}
	night := TimeWindow{Days: []time.Weekday{time.Friday}, Start: "22:00", End: "06:00", Zone: "UTC"}
	tests := []struct {
		name    string
		windows []TimeWindow
		now     time.Time
		want    bool
	}{
		{"no windows", nil, utc("2026-03-06 03:00:00"), true},
		{"start is inclusive", []TimeWindow{{Start: "09:00", End: "17:00"}}, utc("2026-03-06 09:00:00"), true},
		{"end is exclusive", []TimeWindow{{Start: "09:00", End: "17:00"}}, utc("2026-03-06 17:00:00"), false},
		{"last second before end", []TimeWindow{{Start: "09:00", End: "17:00"}}, utc("2026-03-06 16:59:59"), true},
		{"before start", []TimeWindow{{Start: "09:00", End: "17:00"}}, utc("2026-03-06 08:59:59"), false},
		{"end 24:00 includes 23:59", []TimeWindow{{Start: "18:00", End: "24:00"}}, utc("2026-03-06 23:59:59"), true},
		{"end 24:00 excludes midnight", []TimeWindow{{Start: "18:00", End: "24:00"}}, utc("2026-03-07 00:00:00"), false},
		{"second window matches", []TimeWindow{{Start: "01:00", End: "02:00"}, {Start: "09:00", End: "10:00"}}, utc("2026-03-06 09:30:00"), true},

		// 2026-03-06 is a Friday; New York is on EST (UTC-5) until 2026-03-08.
		{"New York, EST, inside", []TimeWindow{office}, utc("2026-03-06 14:30:00"), true},  // 09:30 EST
		{"New York, EST, before", []TimeWindow{office}, utc("2026-03-06 13:30:00"), false}, // 08:30 EST
		{"New York, EDT, inside", []TimeWindow{office}, utc("2026-03-09 13:30:00"), true},  // Monday 09:30 EDT
		{"New York, EDT, after", []TimeWindow{office}, utc("2026-03-09 21:00:00"), false},  // 17:00 EDT
		{"New York, EST, end", []TimeWindow{office}, utc("2026-03-06 21:59:00"), true},     // 16:59 EST
		{"New York, weekend", []TimeWindow{office}, utc("2026-03-07 15:00:00"), false},     // Saturday 10:00 EST
		{"New York, Friday in UTC is Thursday there", []TimeWindow{{Days: []time.Weekday{time.Thursday}, Start: "20:00", End: "24:00", Zone: "America/New_York"}}, utc("2026-03-06 02:00:00"), true},
		// Spring forward: 2026-03-08 02:00 EST becomes 03:00 EDT (07:00 UTC).
		{"skipped hour, last minute before", []TimeWindow{{Start: "02:00", End: "03:00", Zone: "America/New_York"}}, utc("2026-03-08 06:59:59"), false},
		{"skipped hour, first minute after", []TimeWindow{{Start: "02:00", End: "03:00", Zone: "America/New_York"}}, utc("2026-03-08 07:00:00"), false},
		// Fall back: 2026-11-01 01:00–02:00 happens in EDT and again in EST.
		{"repeated hour, first time (EDT)", []TimeWindow{{Start: "01:00", End: "02:00", Zone: "America/New_York"}}, utc("2026-11-01 05:30:00"), true},
		{"repeated hour, second time (EST)", []TimeWindow{{Start: "01:00", End: "02:00", Zone: "America/New_York"}}, utc("2026-11-01 06:30:00"), true},
		{"after the repeated hour", []TimeWindow{{Start: "01:00", End: "02:00", Zone: "America/New_York"}}, utc("2026-11-01 07:00:00"), false},

		// Kolkata is UTC+5:30 all year.
		{"Kolkata, opening minute", []TimeWindow{{Start: "09:00", End: "17:30", Zone: "Asia/Kolkata"}}, utc("2026-03-06 03:30:00"), true},
		{"Kolkata, a minute early", []TimeWindow{{Start: "09:00", End: "17:30", Zone: "Asia/Kolkata"}}, utc("2026-03-06 03:29:59"), false},
		{"Kolkata, closing minute", []TimeWindow{{Start: "09:00", End: "17:30", Zone: "Asia/Kolkata"}}, utc("2026-03-06 12:00:00"), false},
		{"Kolkata, last minute", []TimeWindow{{Start: "09:00", End: "17:30", Zone: "Asia/Kolkata"}}, utc("2026-03-06 11:59:59"), true},
		{"Kolkata, Monday there, Sunday in UTC", []TimeWindow{{Days: []time.Weekday{time.Monday}, Start: "00:00", End: "02:00", Zone: "Asia/Kolkata"}}, utc("2026-03-08 19:30:00"), true},

		// Friday 22:00 to Saturday 06:00 (UTC). 2026-03-06 is a Friday.
		{"midnight window, Friday evening", []TimeWindow{night}, utc("2026-03-06 23:00:00"), true},
		{"midnight window, Friday start", []TimeWindow{night}, utc("2026-03-06 22:00:00"), true},
		{"midnight window, Saturday morning", []TimeWindow{night}, utc("2026-03-07 03:00:00"), true},
		{"midnight window, Saturday end", []TimeWindow{night}, utc("2026-03-07 06:00:00"), false},
		{"midnight window, Friday morning is Thursday's", []TimeWindow{night}, utc("2026-03-06 03:00:00"), false},
		{"midnight window, Saturday evening", []TimeWindow{night}, utc("2026-03-07 23:00:00"), false},
		{"midnight window, midday", []TimeWindow{night}, utc("2026-03-06 12:00:00"), false},
		{"midnight window every day, Sunday morning wraps to Saturday", []TimeWindow{{Days: []time.Weekday{time.Saturday}, Start: "23:00", End: "01:00"}}, utc("2026-03-08 00:30:00"), true},
		{"midnight window in Kolkata", []TimeWindow{{Start: "22:00", End: "06:00", Zone: "Asia/Kolkata"}}, utc("2026-03-06 20:00:00"), true}, // 01:30 IST
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := compile(t, Constraints{TimeWindows: tt.windows})
			code, reason := cc.CheckTime(tt.now)
			if got := code == ""; got != tt.want {
				t.Fatalf("CheckTime(%v) = %q %q, want allowed %v", tt.now, code, reason, tt.want)
			}
			if code != "" && code != CodeOutsideTimeWindow {
				t.Errorf("code = %q", code)
			}
		})
	}
}

func TestCheckTimeInheritedMustAlsoHold(t *testing.T) {
	cc := compile(t, Constraints{
		TimeWindows: []TimeWindow{{Start: "00:00", End: "24:00"}},
		Inherited:   []Condition{{TimeWindows: []TimeWindow{{Start: "09:00", End: "17:00"}}}},
	})
	at := time.Date(2026, 3, 6, 20, 0, 0, 0, time.UTC)
	code, reason := cc.CheckTime(at)
	if code != CodeOutsideTimeWindow || !strings.Contains(reason, "inherited") {
		t.Errorf("CheckTime = %q %q, want the inherited window to refuse", code, reason)
	}
	if code, _ := cc.CheckTime(at.Add(-8 * time.Hour)); code != "" {
		t.Errorf("CheckTime inside both = %q", code)
	}
}

func TestCheckTimeUsesTheWindowZoneNotTheInputZone(t *testing.T) {
	cc := compile(t, Constraints{TimeWindows: []TimeWindow{{Start: "09:00", End: "17:00", Zone: "Asia/Kolkata"}}})
	// 10:00 in New York is 20:30 in Kolkata: outside, whatever zone now carries.
	now := time.Date(2026, 3, 6, 10, 0, 0, 0, mustZone(t, "America/New_York"))
	if code, _ := cc.CheckTime(now); code != CodeOutsideTimeWindow {
		t.Errorf("CheckTime = %q, want %q", code, CodeOutsideTimeWindow)
	}
}

func TestCheckIP(t *testing.T) {
	tests := []struct {
		name  string
		allow []string
		ip    string // "" for no IP
		want  bool
	}{
		{"no allowlist, no IP", nil, "", true},
		{"IPv4 in CIDR", []string{"10.0.0.0/8"}, "10.1.2.3", true},
		{"IPv4 outside CIDR", []string{"10.0.0.0/8"}, "11.0.0.1", false},
		{"IPv4 exact", []string{"192.0.2.7"}, "192.0.2.7", true},
		{"IPv4 exact, neighbour", []string{"192.0.2.7"}, "192.0.2.8", false},
		{"IPv4 /0", []string{"0.0.0.0/0"}, "203.0.113.9", true},
		{"IPv4 /0 excludes IPv6", []string{"0.0.0.0/0"}, "2001:db8::1", false},
		{"IPv6 in CIDR", []string{"2001:db8::/32"}, "2001:db8:1::42", true},
		{"IPv6 outside CIDR", []string{"2001:db8::/32"}, "2001:db9::1", false},
		{"IPv6 /127 boundary", []string{"2001:db8::/127"}, "2001:db8::1", true},
		{"IPv6 /127 past boundary", []string{"2001:db8::/127"}, "2001:db8::2", false},
		{"IPv6 exact", []string{"::1"}, "::1", true},
		{"IPv6 with zone", []string{"fe80::/10"}, "fe80::1%eth0", true},
		{"IPv4-mapped client, IPv4 CIDR", []string{"10.0.0.0/8"}, "::ffff:10.1.2.3", true},
		{"IPv4-mapped client, outside", []string{"10.0.0.0/8"}, "::ffff:11.1.2.3", false},
		{"IPv4 client, IPv4-mapped CIDR", []string{"::ffff:10.0.0.0/104"}, "10.1.2.3", true},
		{"IPv4 client, IPv6 CIDR", []string{"2001:db8::/32"}, "10.1.2.3", false},
		{"IPv6 client, IPv4 CIDR", []string{"10.0.0.0/8"}, "2001:db8::1", false},
		{"second entry matches", []string{"10.0.0.0/8", "2001:db8::/32"}, "2001:db8::1", true},
		{"missing IP is refused", []string{"0.0.0.0/0", "::/0"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := compile(t, Constraints{IPAllow: tt.allow})
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			code, reason := cc.CheckIP(ip)
			if got := code == ""; got != tt.want {
				t.Fatalf("CheckIP(%v) = %q %q, want allowed %v", ip, code, reason, tt.want)
			}
			if code != "" && code != CodeIPNotAllowed {
				t.Errorf("code = %q", code)
			}
		})
	}
}

func TestCheckIPInheritedMustAlsoHold(t *testing.T) {
	cc := compile(t, Constraints{
		IPAllow:   []string{"10.0.0.0/8"},
		Inherited: []Condition{{IPAllow: []string{"10.1.0.0/16"}}},
	})
	if code, _ := cc.CheckIP(netip.MustParseAddr("10.1.0.1")); code != "" {
		t.Errorf("inside both: %q", code)
	}
	code, reason := cc.CheckIP(netip.MustParseAddr("10.2.0.1"))
	if code != CodeIPNotAllowed || !strings.Contains(reason, "inherited") {
		t.Errorf("outside the inherited list: %q %q", code, reason)
	}
}

func TestNilCompiledConstraintsHold(t *testing.T) {
	var cc *CompiledConstraints
	if code, _ := cc.Check([]byte("not json"), time.Time{}, netip.Addr{}); code != "" {
		t.Errorf("Check = %q", code)
	}
	if code, _ := cc.CheckArgumentValues(map[string]any{"a": 1}); code != "" {
		t.Errorf("CheckArgumentValues = %q", code)
	}
	if cc.RequireApproval() || cc.RateLimits() != nil {
		t.Error("nil constraints require something")
	}
}

func TestCheckOrder(t *testing.T) {
	// Every check fails; the first in order names the code.
	cc := compile(t, Constraints{
		TimeWindows:     []TimeWindow{{Start: "09:00", End: "10:00"}},
		IPAllow:         []string{"10.0.0.0/8"},
		Arguments:       []ArgumentRule{{Pointer: "/a", Required: true}},
		RequireApproval: true,
	})
	outside := time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC)
	inside := time.Date(2026, 3, 6, 9, 30, 0, 0, time.UTC)
	good, bad := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("192.0.2.1")
	steps := []struct {
		args []byte
		now  time.Time
		ip   netip.Addr
		want string
	}{
		{nil, outside, bad, CodeOutsideTimeWindow},
		{nil, inside, bad, CodeIPNotAllowed},
		{nil, inside, good, CodeArgumentNotAllowed},
		{[]byte(`{"a":1}`), inside, good, CodeApprovalRequired},
	}
	for _, s := range steps {
		if code, _ := cc.Check(s.args, s.now, s.ip); code != s.want {
			t.Errorf("Check(%s, %v, %v) = %q, want %q", s.args, s.now, s.ip, code, s.want)
		}
	}
}
