package agents

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
)

// appendCanonical appends v, as decodeArguments returns it, in the
// canonical form argsDigest hashes: object keys sorted by their UTF-8
// bytes, no white space, strings escaped as RFC 8785 (JCS) escapes them,
// numbers exactly as written. It differs from JCS in two ways that do not
// matter for a digest compared only with itself: keys sort by UTF-8 bytes
// instead of UTF-16 code units, and numbers are not normalized (1.0 and 1
// digest differently).
func appendCanonical(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		if v {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case json.Number:
		return append(b, v...)
	case string:
		return appendCanonicalString(b, v)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, e)
		}
		return append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, strings.Compare)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonicalString(b, k)
			b = append(b, ':')
			b = appendCanonical(b, v[k])
		}
		return append(b, '}')
	}
	panic("agents: appendCanonical: unexpected type from decodeArguments")
}

// appendCanonicalString escapes as RFC 8785 §3.2.2.2: '"' and '\\', the
// short escapes \b \t \n \f \r, other control characters as \u00xx, and
// everything else as itself.
func appendCanonicalString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf || c >= 0x20 && c != '"' && c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
	}
	return append(b, '"')
}
