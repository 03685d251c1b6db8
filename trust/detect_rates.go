package trust

import (
	"fmt"
	"time"
)

// observe counts the call in its minute and fires when the minute holds
// far more calls than the agent's usual busy minute. Minutes without
// calls are not averaged: an agent that works in bursts once an hour has
// bursts as its usual minute.
func (r *RateBaseline) observe(h history, c *BurstConfig, out []Finding) []Finding {
	minute := floorDiv(h.at.Unix(), 60)
	if minute != r.Minute {
		if r.Count > 0 {
			x := float64(r.Count)
			if r.ActiveMinutes == 0 {
				r.Average = x
			} else {
				// A burst enters the average clipped to Factor × the
				// average, so that one runaway minute does not blind the
				// detector for the next hours.
				x = min(x, float64(c.Factor*r.Average))
				r.Average += float64(c.Alpha * (x - r.Average))
			}
			r.ActiveMinutes++
		}
		r.Minute, r.Count = minute, 0
	}
	r.Count++
	if r.Count > c.Floor && float64(r.Count) > float64(c.Factor*r.Average) &&
		r.ActiveMinutes >= c.MinActiveMinutes && c.Warmup.met(h.n, h.age) &&
		(r.FiredAt.IsZero() || h.at.Sub(r.FiredAt) >= c.Cooldown) {
		r.FiredAt = h.at
		out = append(out, Finding{Kind: FindingBurst, At: h.at, Severity: c.Severity,
			Detail: fmt.Sprintf("%d calls in the minute from %s, usually %.1f in a busy minute",
				r.Count, time.Unix(minute*60, 0).UTC().Format(time.RFC3339), r.Average)})
	}
	return out
}

// observe counts the clock hour once, and fires on the first call of an
// hour of the day (with its neighbours) in which the agent is rarely
// active.
func (hb *HourBaseline) observe(h history, c *HourConfig, out []Finding) []Finding {
	hour := floorDiv(h.at.Unix(), 3600)
	if hour == hb.LastHour && hb.Total > 0 {
		return out
	}
	hb.LastHour = hour
	hod := int(hour % 24)
	if hod < 0 {
		hod += 24
	}
	if hb.Total > 0 && c.Warmup.met(h.n, h.age) {
		near := hb.Active[(hod+23)%24] + hb.Active[hod] + hb.Active[(hod+1)%24]
		if share := near / hb.Total; share < c.MaxShare {
			out = append(out, Finding{Kind: FindingUnusualHour, At: h.at, Severity: c.Severity,
				Detail: fmt.Sprintf("active at %02d:00–%02d:59 UTC, when it has %.1f%% of its activity (with the hours around it)",
					hod, hod, 100*share)})
		}
	}
	hb.Active[hod]++
	hb.Total++
	if hb.Total >= hourHistogramCap {
		for i := range hb.Active {
			hb.Active[i] /= 2
		}
		hb.Total /= 2
	}
	return out
}

// observe follows the share of denied decisions over two horizons and
// fires when the recent one jumps above the long-term one.
func (d *DenialBaseline) observe(h history, denied bool, c *DenialConfig, out []Finding) []Finding {
	x := 0.0
	if denied {
		x = 1
	}
	if d.Decisions == 0 {
		d.Long, d.Short = x, x
	} else {
		d.Long += float64(c.LongAlpha * (x - d.Long))
		d.Short += float64(c.ShortAlpha * (x - d.Short))
	}
	n := d.Decisions
	d.Decisions++
	rise := d.Short - d.Long
	if d.Alarm && rise < c.MinRise/2 {
		d.Alarm = false
	}
	if !d.Alarm && d.Short >= c.MinRatio && rise >= c.MinRise && c.Warmup.met(n, h.age) {
		d.Alarm = true
		out = append(out, Finding{Kind: FindingDenialRise, At: h.at, Severity: c.Severity,
			Detail: fmt.Sprintf("%.0f%% of recent decisions denied, usually %.0f%%", 100*d.Short, 100*d.Long)})
	}
	return out
}
