package agents

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeArguments decodes request arguments into maps, slices, strings,
// json.Number, bools and nils.
//
// Besides invalid JSON it refuses what different parsers read differently,
// because the tool that finally receives the arguments may parse them with
// another parser than this check: invalid UTF-8 and lone UTF-16 surrogate
// escapes (encoding/json quietly replaces both with U+FFFD), duplicate
// object keys (first wins in some parsers, last in others), keys that
// differ only in letter case (encoding/json matches struct fields
// case-insensitively), and nesting deeper than maxArgumentDepth.
//
// It is hand-written because it runs on the decision hot path:
// encoding/json's Decoder.Token, the standard way to see duplicate keys,
// costs several microseconds for a small document.
func decodeArguments(raw []byte) (any, error) {
	if !utf8.Valid(raw) {
		return nil, errors.New("arguments are not valid UTF-8")
	}
	d := argDecoder{data: raw}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.skipSpace(); d.pos != len(d.data) {
		return nil, errors.New("arguments have data after the JSON value")
	}
	return v, nil
}

type argDecoder struct {
	data []byte
	pos  int
}

var errSyntax = errors.New("arguments are not valid JSON")

func (d *argDecoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *argDecoder) value(depth int) (any, error) {
	if depth > maxArgumentDepth {
		return nil, fmt.Errorf("arguments nest deeper than %d", maxArgumentDepth)
	}
	d.skipSpace()
	if d.pos >= len(d.data) {
		return nil, errSyntax
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		return d.string()
	case c == '-' || isDigit(c):
		return d.number()
	case d.literal("true"):
		return true, nil
	case d.literal("false"):
		return false, nil
	case d.literal("null"):
		return nil, nil
	}
	return nil, errSyntax
}

func (d *argDecoder) literal(word string) bool {
	if len(d.data)-d.pos >= len(word) && string(d.data[d.pos:d.pos+len(word)]) == word {
		d.pos += len(word)
		return true
	}
	return false
}

// smallObject is the key count up to which a duplicate key is found by
// comparing with every earlier key (strings.EqualFold, no allocation);
// larger objects switch to a set of folded keys so that a huge object
// costs linear, not quadratic, time.
const smallObject = 16

func (d *argDecoder) object(depth int) (any, error) {
	d.pos++ // '{'
	m := map[string]any{}
	var small [smallObject]string
	keys := small[:0]
	var folded map[string]struct{} // set once the object outgrows small
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return m, nil
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, errSyntax
		}
		key, err := d.string()
		if err != nil {
			return nil, err
		}
		dup := false
		switch {
		case folded != nil:
			fk := foldKey(key)
			_, dup = folded[fk]
			folded[fk] = struct{}{}
		case slices.ContainsFunc(keys, func(k string) bool { return strings.EqualFold(k, key) }):
			dup = true
		case len(keys) < smallObject:
			keys = append(keys, key)
		default:
			folded = make(map[string]struct{}, 4*smallObject)
			for _, k := range append(keys, key) {
				folded[foldKey(k)] = struct{}{}
			}
		}
		if dup {
			return nil, fmt.Errorf("arguments repeat the key %q (keys must differ by more than letter case)", key)
		}
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, errSyntax
		}
		d.pos++
		if m[key], err = d.value(depth + 1); err != nil {
			return nil, err
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, errSyntax
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return m, nil
		default:
			return nil, errSyntax
		}
	}
}

// foldKey maps every rune to the smallest rune of its simple-folding
// orbit, so two keys fold to the same string exactly when
// strings.EqualFold says they are equal.
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}

func (d *argDecoder) array(depth int) (any, error) {
	d.pos++ // '['
	a := []any{}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return a, nil
	}
	for {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, errSyntax
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return a, nil
		default:
			return nil, errSyntax
		}
	}
}

// number validates a JSON number and returns it as written.
func (d *argDecoder) number() (any, error) {
	start := d.pos
	if d.data[d.pos] == '-' {
		d.pos++
	}
	switch {
	case d.pos < len(d.data) && d.data[d.pos] == '0':
		d.pos++
	case d.pos < len(d.data) && isDigit(d.data[d.pos]):
		d.digits()
	default:
		return nil, errSyntax
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if !d.digits() {
			return nil, errSyntax
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if !d.digits() {
			return nil, errSyntax
		}
	}
	return json.Number(d.data[start:d.pos]), nil
}

func (d *argDecoder) digits() bool {
	start := d.pos
	for d.pos < len(d.data) && isDigit(d.data[d.pos]) {
		d.pos++
	}
	return d.pos > start
}

// string decodes a JSON string starting at its opening quote.
func (d *argDecoder) string() (string, error) {
	d.pos++ // '"'
	start := d.pos
	for d.pos < len(d.data) {
		switch c := d.data[d.pos]; {
		case c == '"':
			s := string(d.data[start:d.pos])
			d.pos++
			return s, nil
		case c == '\\':
			return d.escapedString(start)
		case c < 0x20:
			return "", errSyntax
		}
		d.pos++
	}
	return "", errSyntax
}

// escapedString continues string after the first backslash.
func (d *argDecoder) escapedString(start int) (string, error) {
	b := append([]byte(nil), d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(b), nil
		case c < 0x20:
			return "", errSyntax
		case c != '\\':
			b = append(b, c)
			d.pos++
			continue
		}
		if d.pos+1 >= len(d.data) {
			return "", errSyntax
		}
		esc := d.data[d.pos+1]
		d.pos += 2
		switch esc {
		case '"', '\\', '/':
			b = append(b, esc)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", errSyntax
			}
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
					d.pos += 2
					r2, ok = d.hex4()
				}
				if r = utf16.DecodeRune(r, r2); !ok || r == utf8.RuneError {
					return "", errors.New("arguments contain a lone UTF-16 surrogate escape")
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", errSyntax
		}
	}
	return "", errSyntax
}

func (d *argDecoder) hex4() (rune, bool) {
	if d.pos+4 > len(d.data) {
		return 0, false
	}
	var r rune
	for _, c := range d.data[d.pos : d.pos+4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	d.pos += 4
	return r, true
}
