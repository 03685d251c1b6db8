package httpx

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriteJSON(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		data     any
		wantCode int
		wantBody string
	}{
		{
			name:     "object data",
			status:   http.StatusOK,
			data:     map[string]string{"id": "u_1"},
			wantCode: http.StatusOK,
			wantBody: `{"success":true,"data":{"id":"u_1"}}` + "\n",
		},
		{
			name:     "nil data keeps the data key",
			status:   http.StatusCreated,
			data:     nil,
			wantCode: http.StatusCreated,
			wantBody: `{"success":true,"data":null}` + "\n",
		},
		{
			name:     "html is escaped",
			status:   http.StatusOK,
			data:     "<script>",
			wantCode: http.StatusOK,
			wantBody: `{"success":true,"data":"\u003cscript\u003e"}` + "\n",
		},
		{
			name:     "unencodable data becomes a 500 envelope",
			status:   http.StatusOK,
			data:     make(chan int),
			wantCode: http.StatusInternalServerError,
			wantBody: `{"success":false,"error":{"code":"INTERNAL_ERROR","message":"internal error"}}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteJSON(rec, tt.status, tt.data)
			checkResponse(t, rec, tt.wantCode, tt.wantBody)
		})
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		code     string
		message  string
		wantBody string
	}{
		{
			name:     "plain",
			status:   http.StatusUnauthorized,
			code:     "INVALID_CREDENTIALS",
			message:  "email or password is wrong",
			wantBody: `{"success":false,"error":{"code":"INVALID_CREDENTIALS","message":"email or password is wrong"}}` + "\n",
		},
		{
			name:     "quotes in message are escaped",
			status:   http.StatusBadRequest,
			code:     "INVALID_REQUEST",
			message:  `unknown field "x"`,
			wantBody: `{"success":false,"error":{"code":"INVALID_REQUEST","message":"unknown field \"x\""}}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, tt.status, tt.code, tt.message)
			checkResponse(t, rec, tt.status, tt.wantBody)
		})
	}
}

func checkResponse(t *testing.T, rec *httptest.ResponseRecorder, wantCode int, wantBody string) {
	t.Helper()
	if rec.Code != wantCode {
		t.Errorf("status = %d, want %d", rec.Code, wantCode)
	}
	if got := rec.Body.String(); got != wantBody {
		t.Errorf("body = %s, want %s", got, wantBody)
	}
	for header, want := range map[string]string{
		"Content-Type":           "application/json",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := rec.Header().Get(header); got != want {
			t.Errorf("%s = %q, want %q", header, got, want)
		}
	}
}
