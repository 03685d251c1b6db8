package agents

import (
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/kavachos/kavach/storage"
)

func TestParseCost(t *testing.T) {
	ok := []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"0.25", 250_000}, {"12", 12_000_000}, {"12.5", 12_500_000}, {"0.000001", 1},
		{"000.5", 500_000}, {"7.000000", 7_000_000}, {"1000000000000", MaxCostUnits * microsPerUnit},
		{"1000000000000.000000", MaxCostUnits * microsPerUnit}, {"0000000000000000000000001", 1_000_000},
	}
	for _, c := range ok {
		got, err := parseCost("cost", Amount(c.in))
		if err != nil || got != c.want {
			t.Errorf("parseCost(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, msg string }{
		{"", "is required"},
		{"0.0000001", "at most 6 decimal places"},
		{"1000000000000.000001", "at most 1000000000000"},
		{"1000000000001", "at most 1000000000000"},
		{"99999999999999999999999", "at most 1000000000000"},
		{"-1", "non-negative decimal"}, {"+1", "non-negative decimal"}, {"1e3", "non-negative decimal"},
		{"1E3", "non-negative decimal"}, {" 1", "non-negative decimal"}, {"1.", "non-negative decimal"},
		{".5", "non-negative decimal"}, {"1,5", "non-negative decimal"}, {"abc", "non-negative decimal"},
		{"true", "non-negative decimal"}, {"{}", "non-negative decimal"}, {"١", "non-negative decimal"},
		{"NaN", "non-negative decimal"}, {"Infinity", "non-negative decimal"}, {"0x10", "non-negative decimal"},
	}
	for _, c := range bad {
		_, err := parseCost("cost", Amount(c.in))
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "cost" || !strings.Contains(ve.Message, c.msg) {
			t.Errorf("parseCost(%q) = %v; want a cost error containing %q", c.in, err, c.msg)
		}
	}
}

func TestParseCalls(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "3": 3, "007": 7, "1000000000000": MaxCallsLimit} {
		if got, err := parseCalls("limit", Amount(in), MaxCallsLimit); err != nil || got != want {
			t.Errorf("parseCalls(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1.0", "1.5", "-1", "1e3", "1000000000001", "99999999999999999999", "three"} {
		if _, err := parseCalls("limit", Amount(in), MaxCallsLimit); err == nil {
			t.Errorf("parseCalls(%q) accepted", in)
		}
	}
}

func TestFormatCost(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 1: "0.000001", 250_000: "0.25", 12_500_000: "12.5", 3_000_000: "3",
		1_000_000_000_000_000_000: "1000000000000", 123_456_789: "123.456789"} {
		if got := FormatCost(in); got != want {
			t.Errorf("FormatCost(%d) = %q, want %q", in, got, want)
		}
		if back, err := parseCost("cost", Amount(FormatCost(in))); err != nil || back != in {
			t.Errorf("parseCost(FormatCost(%d)) = %d, %v", in, back, err)
		}
	}
}

// TestAmountJSON: numbers keep their literal text, strings their contents;
// no float is involved.
func TestAmountJSON(t *testing.T) {
	for body, want := range map[string]Amount{
		`{"a":0.1}`: "0.1", `{"a":"0.1"}`: "0.1", `{"a":12345678901234.000001}`: "12345678901234.000001",
		`{"a":null}`: "", `{"a":true}`: "true", `{"a":[1]}`: "[1]", `{"a":1e-7}`: "1e-7",
	} {
		var v struct{ A Amount }
		if err := json.Unmarshal([]byte(body), &v); err != nil || v.A != want {
			t.Errorf("%s: %q, %v; want %q", body, v.A, err, want)
		}
	}
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestPeriodKeys: calendar days and months in the configured zone, around
// midnight, month and year ends, and daylight-saving changes.
func TestPeriodKeys(t *testing.T) {
	cases := []struct {
		zone, at   string
		day, month string
		dayStart   string // UTC
		dayEnd     string
	}{
		{"UTC", "2026-11-26T00:00:00Z", "2026-11-26", "2026-11", "2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z"},
		{"UTC", "2026-11-25T23:59:59.999Z", "2026-11-25", "2026-11", "2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z"},
		// Los Angeles (UTC-8 in winter): UTC's next day is still today.
		{"America/Los_Angeles", "2026-11-26T07:59:59.999Z", "2026-11-25", "2026-11", "2026-11-25T08:00:00Z", "2026-11-26T08:00:00Z"},
		{"America/Los_Angeles", "2026-11-26T08:00:00Z", "2026-11-26", "2026-11", "2026-11-26T08:00:00Z", "2026-11-27T08:00:00Z"},
		// Month end: 1 December in UTC, 30 November in Los Angeles.
		{"America/Los_Angeles", "2026-12-01T07:59:00Z", "2026-11-30", "2026-11", "2026-11-30T08:00:00Z", "2026-12-01T08:00:00Z"},
		{"America/Los_Angeles", "2026-12-01T08:00:00Z", "2026-12-01", "2026-12", "2026-12-01T08:00:00Z", "2026-12-02T08:00:00Z"},
		// Spring forward (8 March 2026, 02:00 → 03:00): a 23-hour day.
		{"America/Los_Angeles", "2026-03-08T12:00:00Z", "2026-03-08", "2026-03", "2026-03-08T08:00:00Z", "2026-03-09T07:00:00Z"},
		// Fall back (1 November 2026, 02:00 → 01:00): a 25-hour day.
		{"America/Los_Angeles", "2026-11-01T09:30:00Z", "2026-11-01", "2026-11", "2026-11-01T07:00:00Z", "2026-11-02T08:00:00Z"},
		// Kolkata (UTC+5:30, no daylight saving): the day starts at 18:30 UTC.
		{"Asia/Kolkata", "2026-11-25T18:29:59.999Z", "2026-11-25", "2026-11", "2026-11-24T18:30:00Z", "2026-11-25T18:30:00Z"},
		{"Asia/Kolkata", "2026-11-25T18:30:00Z", "2026-11-26", "2026-11", "2026-11-25T18:30:00Z", "2026-11-26T18:30:00Z"},
		{"Asia/Kolkata", "2026-11-30T18:30:00Z", "2026-12-01", "2026-12", "2026-11-30T18:30:00Z", "2026-12-01T18:30:00Z"},
		{"Asia/Kolkata", "2026-12-31T18:30:00Z", "2027-01-01", "2027-01", "2026-12-31T18:30:00Z", "2027-01-01T18:30:00Z"},
		{"Asia/Kolkata", "2028-02-28T18:30:00Z", "2028-02-29", "2028-02", "2028-02-28T18:30:00Z", "2028-02-29T18:30:00Z"},
		// Midnight skipped (Havana, 10 March 2024, 00:00 → 01:00): the day
		// starts at 01:00 local, 05:00 UTC; time.Date alone says 04:00.
		{"America/Havana", "2024-03-10T12:00:00Z", "2024-03-10", "2024-03", "2024-03-10T05:00:00Z", "2024-03-11T04:00:00Z"},
		{"America/Havana", "2024-03-10T04:59:59Z", "2024-03-09", "2024-03", "2024-03-09T05:00:00Z", "2024-03-10T05:00:00Z"},
		// Midnight repeated (Havana, 3 November 2024, 01:00 → 00:00): the
		// day starts at the first midnight.
		{"America/Havana", "2024-11-03T12:00:00Z", "2024-11-03", "2024-11", "2024-11-03T04:00:00Z", "2024-11-04T05:00:00Z"},
		// Midnight skipped in the other direction of time.Date's guess.
		{"Asia/Beirut", "2024-03-31T12:00:00Z", "2024-03-31", "2024-03", "2024-03-30T22:00:00Z", "2024-03-31T21:00:00Z"},
		{"America/Santiago", "2022-09-11T12:00:00Z", "2022-09-11", "2022-09", "2022-09-11T04:00:00Z", "2022-09-12T03:00:00Z"},
	}
	for _, c := range cases {
		loc := mustZone(t, c.zone)
		at := utc(c.at)
		key, start, end := Period(storage.BudgetDay, at, loc)
		if key != c.day || !start.Equal(utc(c.dayStart)) || !end.Equal(utc(c.dayEnd)) {
			t.Errorf("%s %s: day %s [%s, %s), want %s [%s, %s)", c.zone, c.at, key, start.UTC().Format(time.RFC3339),
				end.UTC().Format(time.RFC3339), c.day, c.dayStart, c.dayEnd)
		}
		if got := periodKey(storage.BudgetMonth, at, loc); got != c.month {
			t.Errorf("%s %s: month %s, want %s", c.zone, c.at, got, c.month)
		}
	}
}

// TestPeriodBounds: over two years, hour by hour, in zones with and
// without daylight saving, every period holds the instant, and its bounds
// are exactly where the key changes.
func TestPeriodBounds(t *testing.T) {
	for _, zone := range []string{"UTC", "America/Los_Angeles", "Asia/Kolkata", "America/Havana", "Australia/Lord_Howe", "Pacific/Chatham"} {
		loc := mustZone(t, zone)
		for at := utc("2024-01-01T00:17:00Z"); at.Before(utc("2026-01-01T00:00:00Z")); at = at.Add(time.Hour) {
			for _, period := range []string{storage.BudgetDay, storage.BudgetMonth} {
				key, start, end := Period(period, at, loc)
				switch {
				case at.Before(start) || !at.Before(end):
					t.Fatalf("%s %s %v: period [%v, %v) does not hold it", zone, period, at, start, end)
				case periodKey(period, start, loc) != key || periodKey(period, end.Add(-time.Second), loc) != key:
					t.Fatalf("%s %s %v: bounds [%v, %v) leave period %s", zone, period, at, start, end, key)
				case periodKey(period, start.Add(-time.Second), loc) == key || periodKey(period, end, loc) == key:
					t.Fatalf("%s %s %v: period %s extends past [%v, %v)", zone, period, at, key, start, end)
				}
			}
		}
	}
}

func TestCallCountersCaps(t *testing.T) {
	agent := storage.BudgetScope{Type: storage.BudgetScopeAgent, ID: "agt_1"}
	user := storage.BudgetScope{Type: storage.BudgetScopeUser, ID: "usr_1"}
	budgets := []storage.Budget{
		{ID: "b1", Scope: user, Metric: storage.BudgetCalls, Period: storage.BudgetDay, Limit: 100, Action: storage.BudgetBlock},
		{ID: "b2", Scope: agent, Metric: storage.BudgetCalls, Period: storage.BudgetDay, Limit: 10, Action: storage.BudgetWarn},
		{ID: "b3", Scope: agent, Metric: storage.BudgetCalls, Period: storage.BudgetDay, Limit: 50, Action: storage.BudgetSuspend},
		{ID: "b4", Scope: agent, Metric: storage.BudgetCost, Period: storage.BudgetDay, Limit: 2_000_000, Action: storage.BudgetBlock},
		{ID: "b5", Scope: agent, Metric: storage.BudgetCost, Period: storage.BudgetMonth, Limit: 0, Action: storage.BudgetBlock},
	}
	cs := callCounters(budgets, utc("2026-11-26T12:00:00Z"), time.UTC)
	type want struct {
		key               storage.UsageKey
		n                 int
		maxCalls, maxCost int64
	}
	wants := []want{ // sorted: agent before user, day before month
		{storage.UsageKey{Scope: agent, Period: "2026-11"}, 1, noCap, -1},
		{storage.UsageKey{Scope: agent, Period: "2026-11-26"}, 3, 50, 1_999_999},
		{storage.UsageKey{Scope: user, Period: "2026-11-26"}, 1, 100, noCap},
	}
	if len(cs) != len(wants) {
		t.Fatalf("%d counters, want %d", len(cs), len(wants))
	}
	for i, w := range wants {
		c := cs[i]
		if c.key != w.key || len(c.budgets) != w.n || c.maxCalls != w.maxCalls || c.maxCost != w.maxCost {
			t.Errorf("counter %d: %+v (%d budgets), want %+v", i, c, len(c.budgets), w)
		}
	}
	// At 50 calls the suspend budget refuses; with the cost reached, the
	// block budget does.
	day := cs[1]
	if b := day.refusing(storage.Usage{Calls: 50}); b == nil || b.ID != "b3" {
		t.Errorf("refusing at 50 calls: %+v", b)
	}
	if b := day.refusing(storage.Usage{Calls: 3, Cost: 2_000_000}); b == nil || b.ID != "b4" {
		t.Errorf("refusing at the cost limit: %+v", b)
	}
	if b := day.refusing(storage.Usage{Calls: 50, Cost: 2_000_000}); b == nil || b.ID != "b3" {
		t.Errorf("refusing when both are reached: %+v (want the suspend budget)", b)
	}
	if day.refuses(storage.Usage{Calls: 49, Cost: 1_999_999}) || !day.refuses(storage.Usage{Calls: 50}) {
		t.Error("refuses disagrees with the caps")
	}
}

// FuzzParseCost: whatever parseCost accepts is exactly the decimal's value
// in millionths (checked with big.Rat), within bounds, and survives a
// round trip through FormatCost.
func FuzzParseCost(f *testing.F) {
	for _, s := range []string{"0", "0.25", "12.5", "1000000000000", "1e3", "-1", "0.0000001", " 1", "00.010", "1.", ".5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseCost("cost", Amount(s))
		if err != nil {
			return
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok || strings.ContainsAny(s, "eE+-/ ") {
			t.Fatalf("accepted %q", s)
		}
		want := new(big.Rat).Mul(r, big.NewRat(microsPerUnit, 1))
		if !want.IsInt() || want.Num().Int64() != v || v < 0 || v > MaxCostUnits*microsPerUnit {
			t.Fatalf("parseCost(%q) = %d, want %s", s, v, want.RatString())
		}
		if back, err := parseCost("cost", Amount(FormatCost(v))); err != nil || back != v {
			t.Fatalf("round trip of %d: %d, %v", v, back, err)
		}
	})
}
