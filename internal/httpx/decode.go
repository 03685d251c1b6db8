package httpx

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// MaxBodyBytes is the default limit for JSON request bodies. Auth requests
// are small; anything larger is a mistake or an attack.
const MaxBodyBytes = 64 << 10

// Codes carried by [DecodeError].
const (
	CodeInvalidRequest       = "INVALID_REQUEST"
	CodePayloadTooLarge      = "PAYLOAD_TOO_LARGE"
	CodeUnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
)

// DecodeError is a client mistake in a request body. Message is safe to show
// to the client; Field is the JSON path of the offending field when known.
type DecodeError struct {
	Status  int    // 400, 413 or 415
	Code    string // CodeInvalidRequest, CodePayloadTooLarge or CodeUnsupportedMediaType
	Field   string
	Message string
}

func (e *DecodeError) Error() string { return e.Code + ": " + e.Message }

func invalid(field, format string, args ...any) *DecodeError {
	return &DecodeError{
		Status:  http.StatusBadRequest,
		Code:    CodeInvalidRequest,
		Field:   field,
		Message: fmt.Sprintf(format, args...),
	}
}

// DecodeJSON reads r.Body (at most maxBytes; MaxBodyBytes when maxBytes <= 0)
// and decodes it strictly into dst, which must be a non-nil pointer: unknown
// fields, trailing data after the single JSON value, a top-level null and an
// empty body are all rejected.
//
// Every client mistake is returned as a *DecodeError; any other error means
// the caller passed an unusable dst.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any, maxBytes int64) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("httpx: DecodeJSON needs a non-nil pointer, got %T", dst)
	}
	want := jsonNoun(rv.Type().Elem())
	if maxBytes <= 0 {
		maxBytes = MaxBodyBytes
	}

	// A body we would refuse anyway need not be read.
	if r.ContentLength > 0 && !isJSONContentType(r.Header.Get("Content-Type")) {
		return unsupportedMediaType()
	}
	body, derr := readBody(w, r, maxBytes)
	if derr != nil {
		return derr
	}
	value := bytes.Trim(body, jsonSpace)
	if len(value) == 0 || string(value) == "null" {
		return invalid("", "request body must be a JSON %s", want)
	}
	// Bodies of unknown length (chunked) are only known to be present now.
	if !isJSONContentType(r.Header.Get("Content-Type")) {
		return unsupportedMediaType()
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return classify(err, len(body), want)
	}
	if rest := bytes.Trim(body[dec.InputOffset():], jsonSpace); len(rest) > 0 {
		return invalid("", "request body must contain a single JSON value")
	}
	return nil
}

// jsonSpace is the whitespace RFC 8259 allows between tokens.
const jsonSpace = " \t\r\n"

func readBody(w http.ResponseWriter, r *http.Request, maxBytes int64) ([]byte, *DecodeError) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &DecodeError{
				Status:  http.StatusRequestEntityTooLarge,
				Code:    CodePayloadTooLarge,
				Message: fmt.Sprintf("request body must not exceed %d bytes", maxBytes),
			}
		}
		return nil, invalid("", "request body could not be read")
	}
	return body, nil
}

func isJSONContentType(v string) bool {
	mediaType, _, err := mime.ParseMediaType(v)
	return err == nil && mediaType == "application/json"
}

func unsupportedMediaType() *DecodeError {
	return &DecodeError{
		Status:  http.StatusUnsupportedMediaType,
		Code:    CodeUnsupportedMediaType,
		Message: "request body must be sent with Content-Type application/json",
	}
}

// classify turns an encoding/json error into a client-safe DecodeError. The
// messages of encoding/json name Go types, so none of them is passed through.
func classify(err error, bodyLen int, want string) *DecodeError {
	if e, ok := errors.AsType[*json.SyntaxError](err); ok {
		// e.Offset counts the bytes read including the bad one; clients want
		// the zero-based position of the bad byte.
		return invalid("", "malformed JSON at offset %d", max(e.Offset-1, 0))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return invalid("", "malformed JSON at offset %d", bodyLen)
	}
	if e, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return typeMismatch(e, want)
	}
	// encoding/json reports unknown fields only through this message.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if field, uerr := strconv.Unquote(name); uerr == nil {
			return invalid(field, "unknown field %q", field)
		}
	}
	// Errors from UnmarshalJSON/UnmarshalText methods and ",string" tags carry
	// no field path and may describe Go types.
	return invalid("", "request body contains an invalid value")
}

func typeMismatch(e *json.UnmarshalTypeError, want string) *DecodeError {
	if e.Field == "" {
		return invalid("", "request body must be a JSON %s", want)
	}
	noun := jsonNoun(e.Type)
	if strings.HasSuffix(noun, "integer") && isIntegerLiteral(e.Value) {
		return invalid(e.Field, "field %q is out of range", e.Field)
	}
	return invalid(e.Field, "field %q must be %s %s", e.Field, article(noun), noun)
}

// isIntegerLiteral reports whether an UnmarshalTypeError value such as
// "number 300" was an integer, so the mismatch was its range, not its kind.
func isIntegerLiteral(value string) bool {
	n, ok := strings.CutPrefix(value, "number ")
	return ok && !strings.ContainsAny(n, ".eE-")
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
)

// jsonNoun names the JSON type a Go type decodes from.
func jsonNoun(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pt := reflect.PointerTo(t)
	if pt.Implements(textUnmarshaler) && !pt.Implements(jsonUnmarshaler) {
		return "string" // netip.Addr, custom enums, …
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "string" // []byte travels as base64
		}
		return "array"
	case reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	default:
		return "value"
	}
}

func article(noun string) string {
	if strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an"
	}
	return "a"
}

// WriteDecodeError writes the failure envelope for an error returned by
// DecodeJSON. Anything other than a *DecodeError is a server bug and is
// answered with a bare 500.
func WriteDecodeError(w http.ResponseWriter, err error) {
	if e, ok := errors.AsType[*DecodeError](err); ok {
		WriteError(w, e.Status, e.Code, e.Message)
		return
	}
	WriteError(w, http.StatusInternalServerError, "INTERNAL_ERROR", "internal error")
}
