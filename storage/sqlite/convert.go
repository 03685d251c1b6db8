package sqlite

import (
	"fmt"
	"slices"
	"time"
)

// SQLite has no timestamp type: times are INTEGER Unix milliseconds, UTC.
// sqlstore passes time.Time arguments and scan destinations unchanged; the
// functions here convert them at the edge of database/sql. Booleans become
// 0/1 explicitly rather than by the driver's choice.

// args returns args with times and booleans converted. It copies the slice
// only when something changes.
func args(in []any) []any {
	var out []any
	for i, a := range in {
		v, ok := arg(a)
		if !ok {
			continue
		}
		if out == nil {
			out = slices.Clone(in)
		}
		out[i] = v
	}
	if out == nil {
		return in
	}
	return out
}

func arg(a any) (any, bool) {
	switch v := a.(type) {
	case time.Time:
		return v.UnixMilli(), true
	case *time.Time:
		if v == nil {
			return nil, true
		}
		return v.UnixMilli(), true
	case bool:
		if v {
			return int64(1), true
		}
		return int64(0), true
	}
	return nil, false
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
