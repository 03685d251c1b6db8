package trust

import (
	"net/netip"
	"time"
)

// Observation is one thing an agent did, as the detectors see it: a
// decision, or a use of one of its tokens.
type Observation struct {
	At time.Time
	// IP is the client address; the zero Addr when unknown.
	IP        netip.Addr
	UserAgent string
	// Allowed and Denied describe a decision; both false for an
	// observation that is not one (a token presented to a resource
	// server, say). Denied wins when both are set.
	Allowed bool
	Denied  bool
	// Resource is the resource asked for; the probing detector counts the
	// distinct denied ones.
	Resource string
	// TokenID names the credential used (a token's jti, a key's id); the
	// token-spread detector follows it. Empty when unknown.
	TokenID string
}

// FindingKind names a detector.
type FindingKind string

// Finding kinds, one per detector. Stable: stored and shown by the API.
const (
	FindingBurst        FindingKind = "burst"
	FindingNewNetwork   FindingKind = "new_network"
	FindingNewUserAgent FindingKind = "new_user_agent"
	FindingUnusualHour  FindingKind = "unusual_hour"
	FindingDenialRise   FindingKind = "denial_rise"
	FindingProbing      FindingKind = "resource_probing"
	FindingTokenSpread  FindingKind = "token_two_networks"
)

// Finding is what a detector reports.
type Finding struct {
	Kind     FindingKind `json:"kind"`
	At       time.Time   `json:"at"`
	Detail   string      `json:"detail"` // a sentence for people; do not parse it
	Severity float64     `json:"severity"`
}

// Event turns the finding into the score's anomaly signal.
func (f Finding) Event() Event {
	return Event{At: f.At, Signal: SignalAnomaly, Severity: f.Severity}
}

// Baseline is an agent's usual behaviour, learnt from its observations
// by Observe. Like State it is a plain value with exported fields that
// encodes to JSON; persist it and observe into the decoded copy.
//
// Its size is bounded whatever the agent does: at most MaxKnown networks
// and user agents, MaxTokens tokens and Probing.Distinct resources are
// remembered (least recently seen forgotten first), user agents, tokens
// and resources only as 64-bit hashes. With the defaults a baseline is
// under 6 KB of JSON.
type Baseline struct {
	FirstAt      time.Time `json:"firstAt"`
	LastAt       time.Time `json:"lastAt"`
	Observations int64     `json:"observations"`

	Rate            RateBaseline         `json:"rate"`
	Networks        []Seen[netip.Prefix] `json:"networks"`
	UserAgents      []Seen[uint64]       `json:"userAgents"`
	Hours           HourBaseline         `json:"hours"`
	Denials         DenialBaseline       `json:"denials"`
	DeniedResources []Seen[uint64]       `json:"deniedResources"`
	Tokens          []TokenSeen          `json:"tokens"`
}

// RateBaseline is the burst detector's memory.
type RateBaseline struct {
	Minute        int64     `json:"minute"` // Unix minute being counted
	Count         int64     `json:"count"`  // calls in it so far
	ActiveMinutes int64     `json:"activeMinutes"`
	Average       float64   `json:"average"` // moving average of calls per active minute
	FiredAt       time.Time `json:"firedAt"`
}

// HourBaseline is the unusual-hour detector's memory: in how many clock
// hours the agent was active, per hour of the day (UTC).
type HourBaseline struct {
	Active [24]float64 `json:"active"`
	Total  float64     `json:"total"`
	// LastHour is the Unix hour of the latest observation: each clock
	// hour counts once, however many calls it holds.
	LastHour int64 `json:"lastHour"`
}

// hourHistogramCap halves the histogram when it holds this many active
// hours (two months of round-the-clock activity), so that it follows a
// change of rhythm within weeks rather than never.
const hourHistogramCap = 1440

// DenialBaseline is the denial-rise detector's memory.
type DenialBaseline struct {
	Decisions int64   `json:"decisions"`
	Long      float64 `json:"long"`  // long-term share of denials
	Short     float64 `json:"short"` // recent share of denials
	Alarm     bool    `json:"alarm"` // fired and not yet re-armed
}

// Seen is a remembered key: a network, or the hash of a user agent or a
// resource.
type Seen[K comparable] struct {
	Key   K         `json:"key"`
	Last  time.Time `json:"last"`
	Count int64     `json:"count"`
}

// TokenSeen is where a token was last used, per address family: one
// dual-stack client uses both, and the two cannot be compared.
type TokenSeen struct {
	Key     uint64       `json:"key"` // hash of the token id
	V4      netip.Prefix `json:"v4,omitzero"`
	V4At    time.Time    `json:"v4At,omitzero"`
	V6      netip.Prefix `json:"v6,omitzero"`
	V6At    time.Time    `json:"v6At,omitzero"`
	FiredAt time.Time    `json:"firedAt,omitzero"`
}

// Observe learns from one observation and returns the findings it
// causes, nil when none (the common case allocates nothing).
//
// The observation happened at o.At; now is the current time, used when
// At is zero or after now (a client's or another node's clock ahead of
// ours). Observations should come in time order; one older than the
// latest is taken as happening at the latest (its minute and hour are
// those of the latest), since the detectors' memory only moves forward.
//
// c must be valid (DetectorConfig.Validate).
func (b *Baseline) Observe(o Observation, now time.Time, c DetectorConfig) []Finding {
	at := o.At
	if at.IsZero() || (!now.IsZero() && at.After(now)) {
		at = now
	}
	at = at.UTC()
	if at.Before(b.LastAt) {
		at = b.LastAt
	}
	if b.FirstAt.IsZero() {
		b.FirstAt = at
	}
	b.LastAt = at
	h := history{n: b.Observations, age: at.Sub(b.FirstAt), at: at}
	b.Observations++

	var out []Finding
	if !c.Burst.Disabled {
		out = b.Rate.observe(h, &c.Burst, out)
	}
	if o.IP.IsValid() && !c.NewNetwork.Disabled {
		out = b.observeNetwork(h, o.IP, &c.NewNetwork, out)
	}
	if o.UserAgent != "" && !c.NewUserAgent.Disabled {
		out = b.observeUserAgent(h, o.UserAgent, &c.NewUserAgent, out)
	}
	if !c.UnusualHour.Disabled {
		out = b.Hours.observe(h, &c.UnusualHour, out)
	}
	if (o.Allowed || o.Denied) && !c.DenialRise.Disabled {
		out = b.Denials.observe(h, o.Denied, &c.DenialRise, out)
	}
	if o.Denied && o.Resource != "" && !c.Probing.Disabled {
		out = b.observeDenied(h, o.Resource, &c.Probing, out)
	}
	if o.TokenID != "" && o.IP.IsValid() && !c.TokenSpread.Disabled {
		out = b.observeToken(h, o.TokenID, o.IP, &c.TokenSpread, out)
	}
	return out
}

// history is what the warmups look at: observations before this one, the
// time since the first one, and this one's time.
type history struct {
	n   int64
	age time.Duration
	at  time.Time
}

// hash64 is FNV-1a: stable across processes and versions (a persisted
// baseline keeps its meaning), and allocation-free.
func hash64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// remember records key as seen at at in set, which holds at most max
// keys. It reports whether the key is new, and, for a new key that
// displaced another, whether the displaced one was seen within churn
// (the set is too small for the agent's normal variety).
func remember[K comparable](set *[]Seen[K], key K, at time.Time, max int, churn time.Duration) (isNew, churning bool) {
	s := *set
	oldest := -1
	for i := range s {
		if s[i].Key == key {
			s[i].Last = at
			s[i].Count++
			return false, false
		}
		if oldest < 0 || s[i].Last.Before(s[oldest].Last) {
			oldest = i
		}
	}
	if len(s) < max {
		*set = append(s, Seen[K]{Key: key, Last: at, Count: 1})
		return true, false
	}
	churning = at.Sub(s[oldest].Last) < churn
	s[oldest] = Seen[K]{Key: key, Last: at, Count: 1}
	return true, churning
}

// network is the prefix of the given size around ip (IPv4-mapped IPv6
// addresses count as IPv4).
func network(ip netip.Addr, v4Bits, v6Bits int) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	bits := v6Bits
	if ip.Is4() {
		bits = v4Bits
	}
	p, err := ip.Prefix(bits)
	if err != nil { // bits out of range: Validate prevents it
		return netip.PrefixFrom(ip, ip.BitLen())
	}
	return p
}

// floorDiv is a/b rounded down, for Unix times before 1970 too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
