package httpx

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

type signInRequest struct {
	Email    string   `json:"email"`
	Password string   `json:"password"`
	Remember bool     `json:"remember"`
	Attempts int      `json:"attempts"`
	Level    uint8    `json:"level"`
	Score    float64  `json:"score"`
	Scopes   []string `json:"scopes"`
	Profile  struct {
		Age  int               `json:"age"`
		Tags map[string]string `json:"tags"`
	} `json:"profile"`
	IP     netip.Addr `json:"ip"`
	Expiry time.Time  `json:"expiry"`
}

func newRequest(body, contentType string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/auth/sign-in/email", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func TestDecodeJSON(t *testing.T) {
	const jsonCT = "application/json"
	tests := []struct {
		name        string
		body        string
		contentType string
		maxBytes    int64
		chunked     bool // unknown Content-Length, as with Transfer-Encoding: chunked
		wantStatus  int  // 0 means success
		wantCode    string
		wantField   string
		wantMessage string
	}{
		{name: "valid", body: `{"email":"a@example.com","password":"pw"}`, contentType: jsonCT},
		{name: "charset parameter", body: `{"email":"a@example.com"}`, contentType: "application/json; charset=utf-8"},
		{name: "media type is case-insensitive", body: `{}`, contentType: "Application/JSON"},
		{name: "surrounding whitespace", body: "\n\t {\"email\":\"a\"} \r\n", contentType: jsonCT},
		{name: "nested values", body: `{"profile":{"age":3,"tags":{"a":"b"}},"scopes":["x"]}`, contentType: jsonCT},
		{name: "text unmarshaler", body: `{"ip":"192.0.2.1"}`, contentType: jsonCT},

		{name: "unknown field", body: `{"email":"a","x":1}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantField: "x", wantMessage: `unknown field "x"`},
		{name: "unknown nested field", body: `{"profile":{"height":1}}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantField: "height", wantMessage: `unknown field "height"`},
		{name: "number for string", body: `{"password":123}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantField: "password", wantMessage: `field "password" must be a string`},
		{name: "string for boolean", body: `{"remember":"yes"}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantField: "remember", wantMessage: `field "remember" must be a boolean`},
		{name: "fraction for integer", body: `{"attempts":1.5}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantField: "attempts", wantMessage: `field "attempts" must be an integer`},
		{name: "negative for unsigned", body: `{"level":-1}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantField: "level", wantMessage: `field "level" must be a non-negative integer`},
		{name: "integer out of range", body: `{"level":300}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantField: "level", wantMessage: `field "level" is out of range`},
		{name: "string for number", body: `{"score":"high"}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantField: "score", wantMessage: `field "score" must be a number`},
		{name: "object for array", body: `{"scopes":{}}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantField: "scopes", wantMessage: `field "scopes" must be an array`},
		{name: "string for object", body: `{"profile":"x"}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantField: "profile", wantMessage: `field "profile" must be an object`},
		{name: "nested field path", body: `{"profile":{"age":"old"}}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantField: "profile.age", wantMessage: `field "profile.age" must be an integer`},
		{name: "number for text unmarshaler", body: `{"ip":1}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantField: "ip", wantMessage: `field "ip" must be a string`},
		{name: "invalid text unmarshaler value hides Go error", body: `{"ip":"nope"}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantMessage: "request body contains an invalid value"},
		{name: "json unmarshaler error hides Go error", body: `{"expiry":1}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantMessage: "request body contains an invalid value"},
		{name: "array at root", body: `[1,2]`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantMessage: "request body must be a JSON object"},
		{name: "string at root", body: `"x"`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantMessage: "request body must be a JSON object"},
		{name: "null at root", body: `null`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantMessage: "request body must be a JSON object"},
		{name: "empty body", body: ``, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantMessage: "request body must be a JSON object"},
		{name: "empty body without content type", body: ``,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantMessage: "request body must be a JSON object"},
		{name: "whitespace only body", body: " \n ", contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantMessage: "request body must be a JSON object"},
		{name: "syntax error", body: `{"email" "a"}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantMessage: "malformed JSON at offset 9"},
		{name: "truncated", body: `{"email":`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantMessage: "malformed JSON at offset 9"},
		{name: "second value", body: `{}{}`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantMessage: "request body must contain a single JSON value"},
		{name: "trailing garbage", body: `{"email":"a"} x`, contentType: jsonCT,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantMessage: "request body must contain a single JSON value"},
		{name: "over the limit", body: `{"email":"` + strings.Repeat("a", 100) + `"}`, contentType: jsonCT, maxBytes: 64,
			wantStatus: 413, wantCode: CodePayloadTooLarge, wantMessage: "request body must not exceed 64 bytes"},
		{name: "over the limit by trailing whitespace", body: `{}` + strings.Repeat(" ", 100), contentType: jsonCT, maxBytes: 64,
			wantStatus: 413, wantCode: CodePayloadTooLarge, wantMessage: "request body must not exceed 64 bytes"},
		{name: "over the default limit", body: `{"email":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, contentType: jsonCT,
			wantStatus: 413, wantCode: CodePayloadTooLarge, wantMessage: "request body must not exceed 65536 bytes"},
		{name: "exactly the limit", body: `{"email":"` + strings.Repeat("a", 64-len(`{"email":""}`)) + `"}`, contentType: jsonCT, maxBytes: 64},
		{name: "missing content type", body: `{}`,
			wantStatus: 415, wantCode: CodeUnsupportedMediaType, wantMessage: "request body must be sent with Content-Type application/json"},
		{name: "form content type", body: `{}`, contentType: "application/x-www-form-urlencoded",
			wantStatus: 415, wantCode: CodeUnsupportedMediaType, wantMessage: "request body must be sent with Content-Type application/json"},
		{name: "json prefix is not json", body: `{}`, contentType: "application/jsonp",
			wantStatus: 415, wantCode: CodeUnsupportedMediaType, wantMessage: "request body must be sent with Content-Type application/json"},
		{name: "malformed content type", body: `{}`, contentType: "application/json; charset",
			wantStatus: 415, wantCode: CodeUnsupportedMediaType, wantMessage: "request body must be sent with Content-Type application/json"},
		{name: "chunked body with wrong content type", body: `{}`, contentType: "text/plain", chunked: true,
			wantStatus: 415, wantCode: CodeUnsupportedMediaType, wantMessage: "request body must be sent with Content-Type application/json"},
		{name: "chunked empty body", body: ``, contentType: "text/plain", chunked: true,
			wantStatus: 400, wantCode: CodeInvalidRequest, wantMessage: "request body must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest(tt.body, tt.contentType)
			if tt.chunked {
				r.ContentLength = -1
				r.Body = io.NopCloser(strings.NewReader(tt.body))
			}
			var dst signInRequest
			err := DecodeJSON(httptest.NewRecorder(), r, &dst, tt.maxBytes)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("DecodeJSON() = %v, want nil", err)
				}
				return
			}
			de, ok := errors.AsType[*DecodeError](err)
			if !ok {
				t.Fatalf("DecodeJSON() = %v (%T), want *DecodeError", err, err)
			}
			want := DecodeError{Status: tt.wantStatus, Code: tt.wantCode, Field: tt.wantField, Message: tt.wantMessage}
			if *de != want {
				t.Errorf("DecodeJSON() = %+v, want %+v", *de, want)
			}
		})
	}
}

func TestDecodeJSONDecodesValues(t *testing.T) {
	r := newRequest(`{"email":"a@example.com","profile":{"age":42},"ip":"::ffff:192.0.2.1"}`, "application/json")
	var dst signInRequest
	if err := DecodeJSON(httptest.NewRecorder(), r, &dst, 0); err != nil {
		t.Fatal(err)
	}
	if dst.Email != "a@example.com" || dst.Profile.Age != 42 || dst.IP != netip.MustParseAddr("::ffff:192.0.2.1") {
		t.Errorf("decoded %+v", dst)
	}
}

func TestDecodeJSONRejectsUnusableDestination(t *testing.T) {
	tests := []struct {
		name string
		dst  any
	}{
		{name: "nil", dst: nil},
		{name: "non-pointer", dst: signInRequest{}},
		{name: "nil pointer", dst: (*signInRequest)(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := DecodeJSON(httptest.NewRecorder(), newRequest(`{}`, "application/json"), tt.dst, 0)
			if err == nil {
				t.Fatal("DecodeJSON() = nil, want an error")
			}
			if _, ok := errors.AsType[*DecodeError](err); ok {
				t.Errorf("DecodeJSON() = %v, a programming error must not look like a client error", err)
			}
		})
	}
}

func TestWriteDecodeError(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantBody string
	}{
		{
			name:     "decode error",
			err:      &DecodeError{Status: 400, Code: CodeInvalidRequest, Field: "x", Message: `unknown field "x"`},
			wantCode: 400,
			wantBody: `{"success":false,"error":{"code":"INVALID_REQUEST","message":"unknown field \"x\""}}` + "\n",
		},
		{
			name:     "payload too large",
			err:      &DecodeError{Status: 413, Code: CodePayloadTooLarge, Message: "request body must not exceed 64 bytes"},
			wantCode: 413,
			wantBody: `{"success":false,"error":{"code":"PAYLOAD_TOO_LARGE","message":"request body must not exceed 64 bytes"}}` + "\n",
		},
		{
			name:     "other error is internal",
			err:      errors.New("httpx: DecodeJSON needs a non-nil pointer, got int"),
			wantCode: 500,
			wantBody: `{"success":false,"error":{"code":"INTERNAL_ERROR","message":"internal error"}}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteDecodeError(rec, tt.err)
			checkResponse(t, rec, tt.wantCode, tt.wantBody)
		})
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `{"email":"a","password":"b"}`, `{"x":1}`, `{"password":1}`,
		`{"profile":{"age":1e400}}`, `{"level":300}`, `{"ip":"::1"}`, `{"expiry":"2020-01-01T00:00:00Z"}`,
		`{}{}`, `{"email":`, "\xff", `{"scopes":[1,{"a":[]}]}`,
	} {
		f.Add(seed, "application/json")
	}
	f.Add(`{}`, "text/plain")
	f.Add(`{}`, "application/json; charset=\"")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := newRequest(body, contentType)
		var dst signInRequest
		err := DecodeJSON(httptest.NewRecorder(), r, &dst, 1024)
		if err == nil {
			return
		}
		de, ok := errors.AsType[*DecodeError](err)
		if !ok {
			t.Fatalf("DecodeJSON() = %v (%T), want *DecodeError", err, err)
		}
		switch de.Status {
		case 400, 413, 415:
		default:
			t.Fatalf("status %d", de.Status)
		}
		for _, leak := range []string{"Go ", "json:", "signInRequest", "netip", "time.Time", "struct"} {
			if strings.Contains(de.Message, leak) {
				t.Fatalf("message %q leaks %q", de.Message, leak)
			}
		}
	})
}
