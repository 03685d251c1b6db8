package agents

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxArgumentDepth bounds nesting in request arguments; deeper documents
// are refused rather than walked.
const maxArgumentDepth = 64

type compiledRule struct {
	pointer  string
	tokens   []string
	re       *regexp.Regexp
	enum     []scalar
	min, max *decimal
	required bool
}

func compileRule(r ArgumentRule) (compiledRule, error) {
	cr := compiledRule{pointer: r.Pointer, required: r.Required}
	var err error
	if cr.tokens, err = parsePointer(r.Pointer); err != nil {
		return cr, err
	}
	if r.Regex == "" && r.Enum == nil && r.Min == nil && r.Max == nil && !r.Required {
		return cr, fmt.Errorf("rule for %q checks nothing", r.Pointer)
	}
	if r.Regex != "" && (r.Min != nil || r.Max != nil) {
		return cr, fmt.Errorf("rule for %q wants a string (regex) and a number (min/max)", r.Pointer)
	}
	if r.Regex != "" {
		if len(r.Regex) > MaxRegexBytes {
			return cr, fmt.Errorf("regex longer than %d bytes", MaxRegexBytes)
		}
		// Compiling the expression alone first refuses input such as
		// "a)|(b", which would otherwise escape the anchoring group below.
		if _, err := regexp.Compile(r.Regex); err != nil {
			return cr, fmt.Errorf("regex: %v", err)
		}
		if cr.re, err = regexp.Compile(`^(?:` + r.Regex + `)$`); err != nil {
			return cr, fmt.Errorf("regex: %v", err)
		}
	}
	if r.Enum != nil {
		if len(r.Enum) == 0 || len(r.Enum) > MaxEnumValues {
			return cr, fmt.Errorf("enum must list 1 to %d values", MaxEnumValues)
		}
		for i, v := range r.Enum {
			s, err := scalarOf(v)
			if err != nil {
				return cr, fmt.Errorf("enum[%d]: %v", i, err)
			}
			cr.enum = append(cr.enum, s)
		}
	}
	if cr.min, err = boundOf(r.Min); err != nil {
		return cr, fmt.Errorf("min: %v", err)
	}
	if cr.max, err = boundOf(r.Max); err != nil {
		return cr, fmt.Errorf("max: %v", err)
	}
	if cr.min != nil && cr.max != nil && cr.min.cmp(*cr.max) > 0 {
		return cr, errors.New("min is greater than max")
	}
	return cr, nil
}

func boundOf(f *float64) (*decimal, error) {
	if f == nil {
		return nil, nil
	}
	if math.IsNaN(*f) || math.IsInf(*f, 0) {
		return nil, errors.New("not a finite number")
	}
	d, ok := parseDecimal(strconv.FormatFloat(*f, 'g', -1, 64))
	if !ok {
		return nil, errors.New("not a finite number")
	}
	return &d, nil
}

// check reports why the rule refuses doc, or "" when it holds. The reason
// names the pointer but never the value: values may be secrets, and
// reasons reach clients and the audit log.
func (r *compiledRule) check(doc any, hasDoc bool) string {
	v, found := lookupPointer(doc, hasDoc, r.tokens)
	if !found {
		if r.required {
			return fmt.Sprintf("argument %q is required", r.pointer)
		}
		return ""
	}
	if r.re != nil {
		s, ok := v.(string)
		if !ok {
			return fmt.Sprintf("argument %q must be a string", r.pointer)
		}
		if !r.re.MatchString(s) {
			return fmt.Sprintf("argument %q does not match the allowed pattern", r.pointer)
		}
	}
	if r.enum != nil && !r.inEnum(v) {
		return fmt.Sprintf("argument %q is not one of the allowed values", r.pointer)
	}
	if r.min != nil || r.max != nil {
		n, ok := v.(json.Number)
		d, valid := parseDecimal(string(n))
		if !ok || !valid {
			return fmt.Sprintf("argument %q must be a number", r.pointer)
		}
		if r.min != nil && d.cmp(*r.min) < 0 || r.max != nil && d.cmp(*r.max) > 0 {
			return fmt.Sprintf("argument %q is out of the allowed range", r.pointer)
		}
	}
	return ""
}

func (r *compiledRule) inEnum(v any) bool {
	s, err := scalarOf(v)
	if err != nil {
		return false
	}
	for _, e := range r.enum {
		if e == s {
			return true
		}
	}
	return false
}

// parsePointer splits an RFC 6901 JSON pointer into unescaped tokens. ""
// is the whole document.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if len(p) > MaxPointerBytes {
		return nil, fmt.Errorf("pointer longer than %d bytes", MaxPointerBytes)
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("pointer %q must be empty or start with '/'", p)
	}
	if !utf8.ValidString(p) {
		return nil, fmt.Errorf("pointer %q is not valid UTF-8", p)
	}
	parts := strings.Split(p[1:], "/")
	for i, t := range parts {
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || t[j+1] != '0' && t[j+1] != '1') {
				return nil, fmt.Errorf("pointer %q: '~' must be followed by 0 or 1", p)
			}
		}
		// ~1 first: "~01" is the token "~1", not "/".
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return parts, nil
}

// lookupPointer resolves tokens in a document decoded by decodeArguments.
// Array indices are decimal without leading zeros; "-" (the element after
// the last) never exists.
func lookupPointer(doc any, hasDoc bool, tokens []string) (any, bool) {
	if !hasDoc {
		return nil, false
	}
	v := doc
	for _, t := range tokens {
		switch c := v.(type) {
		case map[string]any:
			next, ok := c[t]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, ok := arrayIndex(t)
			if !ok || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func arrayIndex(t string) (int, bool) {
	if t == "" || len(t) > 9 || len(t) > 1 && t[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(t); i++ {
		if t[i] < '0' || t[i] > '9' {
			return 0, false
		}
		n = n*10 + int(t[i]-'0')
	}
	return n, true
}

// scalar is a JSON scalar in comparable form: numbers by canonical
// decimal, so 1, 1.0 and 1e0 compare equal.
type scalar struct {
	kind byte // 's' string, 'n' number, 'b' boolean, 'z' null
	s    string
	num  decimal
	b    bool
}

func scalarOf(v any) (scalar, error) {
	switch x := v.(type) {
	case nil:
		return scalar{kind: 'z'}, nil
	case string:
		return scalar{kind: 's', s: x}, nil
	case bool:
		return scalar{kind: 'b', b: x}, nil
	case json.Number:
		d, ok := parseDecimal(string(x))
		if !ok {
			return scalar{}, fmt.Errorf("%q is not a JSON number", string(x))
		}
		return scalar{kind: 'n', num: d}, nil
	case float64:
		return floatScalar(x)
	case float32:
		return floatScalar(float64(x))
	case int:
		return scalarOf(json.Number(strconv.FormatInt(int64(x), 10)))
	case int8, int16, int32, int64:
		return scalarOf(json.Number(fmt.Sprint(x)))
	case uint, uint8, uint16, uint32, uint64:
		return scalarOf(json.Number(fmt.Sprint(x)))
	}
	return scalar{}, fmt.Errorf("%T is not a JSON scalar", v)
}

func floatScalar(f float64) (scalar, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return scalar{}, errors.New("not a finite number")
	}
	return scalarOf(json.Number(strconv.FormatFloat(f, 'g', -1, 64)))
}

// decimal is an exact decimal number: the value is ±0.mant × 10^pos, with
// mant free of leading and trailing zeros. Zero has an empty mant and is
// never negative. Comparing decimals instead of float64 keeps integers
// beyond 2^53 and values like -1e-400 (which float64 rounds to -0) exact.
type decimal struct {
	neg  bool
	mant string
	pos  int64
}

// maxExponent bounds exponents; a number beyond it is refused, which fails
// the check rather than passing it.
const maxExponent = 1 << 40

// parseDecimal parses a number in JSON syntax.
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(s) && s[i] == '-' {
		d.neg = true
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[start:i]
	if intPart == "" || len(intPart) > 1 && intPart[0] == '0' {
		return d, false
	}
	var frac string
	if i < len(s) && s[i] == '.' {
		i++
		start = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if frac = s[start:i]; frac == "" {
			return d, false
		}
	}
	var exp int64
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		expNeg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			expNeg = s[i] == '-'
			i++
		}
		start = i
		for ; i < len(s) && isDigit(s[i]); i++ {
			if exp = exp*10 + int64(s[i]-'0'); exp > maxExponent {
				return d, false
			}
		}
		if start == i {
			return d, false
		}
		if expNeg {
			exp = -exp
		}
	}
	if i != len(s) {
		return d, false
	}
	// The value is the integer intPart‖frac × 10^(exp-len(frac)), which is
	// 0.digits × 10^(len(digits)+exp-len(frac)) once leading zeros are gone.
	digits := strings.TrimLeft(intPart+frac, "0")
	d.pos = int64(len(digits)) + exp - int64(len(frac))
	d.mant = strings.TrimRight(digits, "0")
	if d.mant == "" {
		return decimal{}, true
	}
	return d, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// cmp returns -1, 0 or +1 as d is less than, equal to or greater than e.
func (d decimal) cmp(e decimal) int {
	ds, es := d.sign(), e.sign()
	if ds != es {
		if ds < es {
			return -1
		}
		return 1
	}
	if ds == 0 {
		return 0
	}
	m := d.cmpMagnitude(e)
	if ds < 0 {
		return -m
	}
	return m
}

func (d decimal) sign() int {
	switch {
	case d.mant == "":
		return 0
	case d.neg:
		return -1
	}
	return 1
}

func (d decimal) cmpMagnitude(e decimal) int {
	if d.pos != e.pos {
		if d.pos < e.pos {
			return -1
		}
		return 1
	}
	// Same position of the leading digit: the digit strings compare as
	// fractions, and without trailing zeros plain string order is that.
	return strings.Compare(d.mant, e.mant)
}
