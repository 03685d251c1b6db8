package sqlite

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kavachos/kavach/storage"
)

// SQLite has no timestamp type: times are INTEGER Unix milliseconds, UTC.
// sqlstore passes time.Time arguments and scan destinations unchanged; the
// functions here convert them at the edge of database/sql. Booleans become
// 0/1 explicitly rather than by the driver's choice, and text is checked
// for what PostgreSQL refuses.

// args returns args with times and booleans converted. It copies the slice
// only when something changes. It refuses text that PostgreSQL would
// refuse (invalid UTF-8, NUL), which SQLite would store as given, so that
// both drivers accept the same values.
func args(in []any) ([]any, error) {
	var out []any
	for i, a := range in {
		v, ok, err := arg(a)
		if err != nil {
			return nil, fmt.Errorf("sqlite: argument %d: %w", i+1, err)
		}
		if !ok {
			continue
		}
		if out == nil {
			out = slices.Clone(in)
		}
		out[i] = v
	}
	if out == nil {
		return in, nil
	}
	return out, nil
}

// arg converts one argument; ok reports whether it changed.
func arg(a any) (v any, ok bool, err error) {
	switch v := a.(type) {
	case string:
		return nil, false, checkText(v)
	case *string:
		if v == nil {
			return nil, false, nil
		}
		return nil, false, checkText(*v)
	case time.Time:
		return v.UnixMilli(), true, nil
	case *time.Time:
		if v == nil {
			return nil, true, nil
		}
		return v.UnixMilli(), true, nil
	case bool:
		if v {
			return int64(1), true, nil
		}
		return int64(0), true, nil
	}
	return nil, false, nil
}

// checkText reports why s cannot be stored as text. The error never quotes
// s: it may be a password or a token.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("text is not valid UTF-8: %w", storage.ErrInvalidValue)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("text contains NUL: %w", storage.ErrInvalidValue)
	}
	return nil
}

// dests returns dest with *time.Time and **time.Time replaced by scanners
// that read Unix milliseconds. It copies the slice only when needed.
func dests(in []any) []any {
	var out []any
	for i, d := range in {
		var s any
		switch v := d.(type) {
		case *time.Time:
			s = millis{v}
		case **time.Time:
			s = nullMillis{v}
		default:
			continue
		}
		if out == nil {
			out = slices.Clone(in)
		}
		out[i] = s
	}
	if out == nil {
		return in
	}
	return out
}

type millis struct{ t *time.Time }

func (m millis) Scan(src any) error {
	ms, ok := src.(int64)
	if !ok {
		return fmt.Errorf("sqlite: time column holds %T, want INTEGER milliseconds", src)
	}
	*m.t = time.UnixMilli(ms).UTC()
	return nil
}

type nullMillis struct{ t **time.Time }

func (m nullMillis) Scan(src any) error {
	if src == nil {
		*m.t = nil
		return nil
	}
	var t time.Time
	if err := (millis{&t}).Scan(src); err != nil {
		return err
	}
	*m.t = &t
	return nil
}
