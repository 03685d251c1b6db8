package trust

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultModelIsValid(t *testing.T) {
	if err := DefaultModel().Validate(); err != nil {
		t.Fatal(err)
	}
	// The rewards add up to exactly 100: a perfect agent reaches the top
	// and no further.
	m := DefaultModel()
	if top := m.Base + m.Allowed.Cap + m.Age.Cap + m.SinceViolation.Cap; top != 100 {
		t.Fatalf("base plus rewards = %v, want 100", top)
	}
}

func TestModelValidate(t *testing.T) {
	for _, c := range []struct {
		field  string
		change func(*Model)
	}{
		{"halfLife", func(m *Model) { m.HalfLife = 0 }},
		{"base", func(m *Model) { m.Base = 101 }},
		{"base", func(m *Model) { m.Base = zero / zero }},
		{"allowed.cap", func(m *Model) { m.Allowed.Cap = -1 }},
		{"allowed.scale", func(m *Model) { m.Allowed.Scale = 0 }},
		{"denied.weight", func(m *Model) { m.Denied.Weight = 1 / zero }},
		{"denied.prior", func(m *Model) { m.Denied.Prior = 0 }},
		{"probe.weight", func(m *Model) { m.Probe.Weight = -8 }},
		{"anomaly.cap", func(m *Model) { m.Anomaly.Cap = -1 }},
		{"refreshTokenReuse.weight", func(m *Model) { m.RefreshTokenReuse.Weight = zero / zero }},
		{"age.full", func(m *Model) { m.Age.Full = 0 }},
		{"sinceViolation.cap", func(m *Model) { m.SinceViolation.Cap = -1 }},
		{"violationPoints", func(m *Model) { m.ViolationPoints = 0 }},
		{"limited.minScore", func(m *Model) { m.Limited.MinScore = 0 }},
		{"standard.minScore", func(m *Model) { m.Standard.MinScore = m.Limited.MinScore }},
		{"elevated.minScore", func(m *Model) { m.Elevated.MinScore = 100.5 }},
		{"trusted.minAge", func(m *Model) { m.Standard.MinAge = 8 * Day }},
		{"elevated.minAllowed", func(m *Model) { m.Elevated.MinAllowed = 10 }},
	} {
		m := DefaultModel()
		c.change(&m)
		err := m.Validate()
		if !errors.Is(err, ErrInvalidModel) || !strings.Contains(err.Error(), c.field+" ") {
			t.Errorf("%s: Validate() = %v, want an error naming it", c.field, err)
		}
	}
}

func TestLevelRank(t *testing.T) {
	for i, l := range []Level{LevelUntrusted, LevelLimited, LevelStandard, LevelTrusted, LevelElevated} {
		if l.Rank() != i {
			t.Errorf("%s rank %d, want %d", l, l.Rank(), i)
		}
	}
	if Level("admin").Rank() != -1 {
		t.Error("an unknown level must rank -1")
	}
}

func TestLevelNeedsHistory(t *testing.T) {
	m := DefaultModel()
	for _, c := range []struct {
		score   float64
		age     time.Duration
		allowed int64
		want    Level
	}{
		{0, 0, 0, LevelUntrusted},
		{39.99, 100 * Day, 1e6, LevelUntrusted},
		{40, 0, 0, LevelLimited},
		{60, 0, 0, LevelStandard},
		{80, 7 * Day, 100, LevelTrusted},
		{80, 7*Day - 1, 100, LevelStandard},
		{80, 7 * Day, 99, LevelStandard},
		{99, 29 * Day, 5000, LevelTrusted},
		{99, 30 * Day, 999, LevelTrusted},
		{95, 30 * Day, 1000, LevelElevated},
		{100, 0, 0, LevelStandard},
	} {
		if got := m.levelOf(c.score, c.age, c.allowed); got != c.want {
			t.Errorf("levelOf(%v, %v, %d) = %s, want %s", c.score, c.age, c.allowed, got, c.want)
		}
	}
}
