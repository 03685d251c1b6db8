package trust

import (
	"errors"
	"fmt"
	"time"
)

// Warmup is the history an agent's baseline needs before a detector may
// fire: a detector that compares an agent with its usual behaviour has
// nothing to compare with at first, and would report everything.
type Warmup struct {
	// Observations before the one being checked (for DenialRise:
	// decisions, allowed or denied).
	Observations int64 `json:"observations"`
	// Age is the time since the agent's first observation.
	Age time.Duration `json:"age"`
}

func (w Warmup) met(n int64, age time.Duration) bool {
	return n >= w.Observations && age >= w.Age
}

// DetectorConfig holds every detector's thresholds. DefaultDetectorConfig
// gives the documented defaults (docs/trust.md says why).
type DetectorConfig struct {
	Burst        BurstConfig     `json:"burst"`
	NewNetwork   NetworkConfig   `json:"newNetwork"`
	NewUserAgent UserAgentConfig `json:"newUserAgent"`
	UnusualHour  HourConfig      `json:"unusualHour"`
	DenialRise   DenialConfig    `json:"denialRise"`
	Probing      ProbingConfig   `json:"probing"`
	TokenSpread  TokenConfig     `json:"tokenSpread"`
}

// BurstConfig: a minute with far more calls than the agent's usual busy
// minute.
type BurstConfig struct {
	Disabled bool   `json:"disabled"`
	Warmup   Warmup `json:"warmup"`
	// MinActiveMinutes is how many minutes with calls the average must
	// have seen.
	MinActiveMinutes int64 `json:"minActiveMinutes"`
	// Alpha is the weight of each new active minute in the moving average
	// of calls per active minute.
	Alpha float64 `json:"alpha"`
	// A minute is a burst when its calls exceed both Factor × the average
	// and Floor.
	Factor float64 `json:"factor"`
	Floor  int64   `json:"floor"`
	// Cooldown is the least time between two burst findings.
	Cooldown time.Duration `json:"cooldown"`
	Severity float64       `json:"severity"`
}

// NetworkConfig: a call from a network the agent was not seen in.
type NetworkConfig struct {
	Disabled bool   `json:"disabled"`
	Warmup   Warmup `json:"warmup"`
	// IPv4Bits and IPv6Bits size a network: /24 and /48 by default, what
	// one site or one provider's allocation usually is.
	IPv4Bits int `json:"ipv4Bits"`
	IPv6Bits int `json:"ipv6Bits"`
	// MaxKnown bounds the networks remembered; the least recently seen
	// is forgotten first.
	MaxKnown int `json:"maxKnown"`
	// ChurnWindow: when the network to forget was seen within this
	// window, the agent uses more networks than MaxKnown as a matter of
	// course (a serverless fleet), novelty is its normal, and the new
	// network is remembered without a finding.
	ChurnWindow time.Duration `json:"churnWindow"`
	Severity    float64       `json:"severity"`
}

// UserAgentConfig: a call with a User-Agent the agent did not use before.
type UserAgentConfig struct {
	Disabled    bool          `json:"disabled"`
	Warmup      Warmup        `json:"warmup"`
	MaxKnown    int           `json:"maxKnown"`    // as in NetworkConfig
	ChurnWindow time.Duration `json:"churnWindow"` // as in NetworkConfig
	Severity    float64       `json:"severity"`
}

// HourConfig: activity in an hour of the day (UTC) the agent is rarely
// active in.
type HourConfig struct {
	Disabled bool   `json:"disabled"`
	Warmup   Warmup `json:"warmup"`
	// MaxShare: an hour is unusual when the agent's active hours in it
	// and its two neighbours are fewer than this share of all its active
	// hours.
	MaxShare float64 `json:"maxShare"`
	Severity float64 `json:"severity"`
}

// DenialConfig: the share of denied decisions rising suddenly.
type DenialConfig struct {
	Disabled bool   `json:"disabled"`
	Warmup   Warmup `json:"warmup"`
	// LongAlpha and ShortAlpha weigh each decision in the long-term and
	// the recent moving averages of the denial share (about 1/alpha
	// decisions of memory).
	LongAlpha  float64 `json:"longAlpha"`
	ShortAlpha float64 `json:"shortAlpha"`
	// The detector fires when the recent share is at least MinRatio and
	// exceeds the long-term one by MinRise, and re-arms once the recent
	// share is back within MinRise/2 of the long-term one.
	MinRatio float64 `json:"minRatio"`
	MinRise  float64 `json:"minRise"`
	Severity float64 `json:"severity"`
}

// ProbingConfig: many distinct resources denied in a short time.
type ProbingConfig struct {
	Disabled bool          `json:"disabled"`
	Warmup   Warmup        `json:"warmup"`
	Window   time.Duration `json:"window"`
	// Distinct denied resources within Window that make a finding.
	Distinct int     `json:"distinct"`
	Severity float64 `json:"severity"`
}

// TokenConfig: one token used from two distant networks within a short
// time.
type TokenConfig struct {
	Disabled bool          `json:"disabled"`
	Warmup   Warmup        `json:"warmup"`
	Window   time.Duration `json:"window"`
	// Two addresses are distant when they are not in the same network of
	// this size: /16 and /32 by default, wider than one site.
	IPv4Bits int `json:"ipv4Bits"`
	IPv6Bits int `json:"ipv6Bits"`
	// MaxTokens bounds the tokens remembered; the least recently used is
	// forgotten first.
	MaxTokens int     `json:"maxTokens"`
	Severity  float64 `json:"severity"`
}

// DefaultDetectorConfig returns the documented defaults.
func DefaultDetectorConfig() DetectorConfig {
	return DetectorConfig{
		Burst: BurstConfig{
			// A day and 200 calls, and 30 busy minutes: enough to know
			// what a busy minute looks like for this agent.
			Warmup: Warmup{Observations: 200, Age: Day}, MinActiveMinutes: 30,
			// About the last 20 busy minutes.
			Alpha: 0.05,
			// Ten times its usual busy minute, and more than one call a
			// second: agents doing real work at a steady pace never do
			// this; a runaway loop or a scraper with its key does.
			Factor: 10, Floor: 60,
			Cooldown: time.Hour, Severity: 1,
		},
		NewNetwork: NetworkConfig{
			// Three days and 50 calls let the agent's usual places (its
			// servers, its owner's laptop) be learnt first.
			Warmup:   Warmup{Observations: 50, Age: 3 * Day},
			IPv4Bits: 24, IPv6Bits: 48,
			// 32 networks: more than an ordinary agent uses; an agent that
			// uses more within a week is churning (ChurnWindow).
			MaxKnown: 32, ChurnWindow: 7 * Day,
			// Mild: a new network is often a redeploy.
			Severity: 0.5,
		},
		NewUserAgent: UserAgentConfig{
			Warmup:   Warmup{Observations: 50, Age: 3 * Day},
			MaxKnown: 16, ChurnWindow: 7 * Day,
			// Mild: a new User-Agent is most often an SDK upgrade.
			Severity: 0.5,
		},
		UnusualHour: HourConfig{
			// Two weeks and 200 calls: a weekly rhythm seen twice.
			Warmup: Warmup{Observations: 200, Age: 14 * Day},
			// 2% of active hours within ±1 hour: an agent active around
			// the clock has 12.5% in any three hours; an office-hours
			// agent has none at 3 a.m. The neighbours keep an agent that
			// runs a little late from firing.
			MaxShare: 0.02, Severity: 0.5,
		},
		DenialRise: DenialConfig{
			// A day and 100 decisions, so the long-term share means
			// something.
			Warmup:    Warmup{Observations: 100, Age: Day},
			LongAlpha: 0.01, ShortAlpha: 0.1,
			// Half of the last ten or so decisions denied, 30 points above
			// usual: about seven denials in a row for an agent that is
			// rarely refused.
			MinRatio: 0.5, MinRise: 0.3, Severity: 1,
		},
		Probing: ProbingConfig{
			// Not a comparison with a baseline, but a new agent's first
			// hour is often its operator discovering what it may do.
			Warmup: Warmup{Observations: 20, Age: time.Hour},
			// 20 different resources denied within 10 minutes: retries of
			// one call never do it, enumeration does.
			Window: 10 * time.Minute, Distinct: 20, Severity: 2,
		},
		TokenSpread: TokenConfig{
			// A new agent's first hour is often its operator trying the
			// token from a laptop before deploying it.
			Warmup: Warmup{Observations: 20, Age: time.Hour},
			// Within 5 minutes from two /16s (IPv6: /32s): no deployment
			// does that with one token; a copy of the token does.
			Window: 5 * time.Minute, IPv4Bits: 16, IPv6Bits: 32,
			MaxTokens: 16, Severity: 3,
		},
	}
}

// ErrInvalidDetectorConfig is wrapped by every error
// DetectorConfig.Validate returns.
var ErrInvalidDetectorConfig = errors.New("invalid detector configuration")

// maxRemembered bounds every MaxKnown, MaxTokens and Distinct: the
// baseline's size and Observe's scans grow with them.
const maxRemembered = 1024

// Validate checks every threshold; the error names the field.
func (c DetectorConfig) Validate() error {
	bad := func(field, why string) error {
		return fmt.Errorf("%w: %s %s", ErrInvalidDetectorConfig, field, why)
	}
	type check struct {
		ok    bool
		field string
		why   string
	}
	frac := func(v float64) bool { return finite(v) && v > 0 && v <= 1 }
	sev := func(v float64) bool { return finite(v) && v > 0 && v <= MaxSeverity }
	warm := func(w Warmup) bool { return w.Observations >= 0 && w.Age >= 0 }
	count := func(n int) bool { return n >= 1 && n <= maxRemembered }
	for _, k := range []check{
		{warm(c.Burst.Warmup), "burst.warmup", "must not be negative"},
		{c.Burst.MinActiveMinutes >= 0, "burst.minActiveMinutes", "must not be negative"},
		{frac(c.Burst.Alpha), "burst.alpha", "must be in (0, 1]"},
		{finite(c.Burst.Factor) && c.Burst.Factor >= 1, "burst.factor", "must be at least 1"},
		{c.Burst.Floor >= 1, "burst.floor", "must be at least 1"},
		{c.Burst.Cooldown >= 0, "burst.cooldown", "must not be negative"},
		{sev(c.Burst.Severity), "burst.severity", "must be in (0, 10]"},

		{warm(c.NewNetwork.Warmup), "newNetwork.warmup", "must not be negative"},
		{c.NewNetwork.IPv4Bits >= 1 && c.NewNetwork.IPv4Bits <= 32, "newNetwork.ipv4Bits", "must be between 1 and 32"},
		{c.NewNetwork.IPv6Bits >= 1 && c.NewNetwork.IPv6Bits <= 128, "newNetwork.ipv6Bits", "must be between 1 and 128"},
		{count(c.NewNetwork.MaxKnown), "newNetwork.maxKnown", "must be between 1 and 1024"},
		{c.NewNetwork.ChurnWindow >= 0, "newNetwork.churnWindow", "must not be negative"},
		{sev(c.NewNetwork.Severity), "newNetwork.severity", "must be in (0, 10]"},

		{warm(c.NewUserAgent.Warmup), "newUserAgent.warmup", "must not be negative"},
		{count(c.NewUserAgent.MaxKnown), "newUserAgent.maxKnown", "must be between 1 and 1024"},
		{c.NewUserAgent.ChurnWindow >= 0, "newUserAgent.churnWindow", "must not be negative"},
		{sev(c.NewUserAgent.Severity), "newUserAgent.severity", "must be in (0, 10]"},

		{warm(c.UnusualHour.Warmup), "unusualHour.warmup", "must not be negative"},
		{frac(c.UnusualHour.MaxShare) && c.UnusualHour.MaxShare < 1, "unusualHour.maxShare", "must be in (0, 1)"},
		{sev(c.UnusualHour.Severity), "unusualHour.severity", "must be in (0, 10]"},

		{warm(c.DenialRise.Warmup), "denialRise.warmup", "must not be negative"},
		{frac(c.DenialRise.LongAlpha), "denialRise.longAlpha", "must be in (0, 1]"},
		{frac(c.DenialRise.ShortAlpha) && c.DenialRise.ShortAlpha > c.DenialRise.LongAlpha, "denialRise.shortAlpha", "must be in (0, 1] and above longAlpha"},
		{frac(c.DenialRise.MinRatio), "denialRise.minRatio", "must be in (0, 1]"},
		{frac(c.DenialRise.MinRise), "denialRise.minRise", "must be in (0, 1]"},
		{sev(c.DenialRise.Severity), "denialRise.severity", "must be in (0, 10]"},

		{warm(c.Probing.Warmup), "probing.warmup", "must not be negative"},
		{c.Probing.Window > 0, "probing.window", "must be positive"},
		{c.Probing.Distinct >= 2 && c.Probing.Distinct <= maxRemembered, "probing.distinct", "must be between 2 and 1024"},
		{sev(c.Probing.Severity), "probing.severity", "must be in (0, 10]"},

		{warm(c.TokenSpread.Warmup), "tokenSpread.warmup", "must not be negative"},
		{c.TokenSpread.Window > 0, "tokenSpread.window", "must be positive"},
		{c.TokenSpread.IPv4Bits >= 1 && c.TokenSpread.IPv4Bits <= 32, "tokenSpread.ipv4Bits", "must be between 1 and 32"},
		{c.TokenSpread.IPv6Bits >= 1 && c.TokenSpread.IPv6Bits <= 128, "tokenSpread.ipv6Bits", "must be between 1 and 128"},
		{count(c.TokenSpread.MaxTokens), "tokenSpread.maxTokens", "must be between 1 and 1024"},
		{sev(c.TokenSpread.Severity), "tokenSpread.severity", "must be in (0, 10]"},
	} {
		if !k.ok {
			return bad(k.field, k.why)
		}
	}
	return nil
}
