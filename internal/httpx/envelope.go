package httpx

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error is the error object of a failure envelope. Code is a stable
// UPPER_SNAKE identifier clients can switch on; Message is a human sentence.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type successEnvelope struct {
	Success bool `json:"success"`
	Data    any  `json:"data"`
}

type errorEnvelope struct {
	Success bool  `json:"success"`
	Error   Error `json:"error"`
}

// WriteJSON writes {"success":true,"data":data} with the given status.
// If data cannot be encoded — a programming error — it writes a 500 failure
// envelope instead, so a client never receives a half-written body.
func WriteJSON(w http.ResponseWriter, status int, data any) {
	body, err := json.Marshal(successEnvelope{Success: true, Data: data})
	if err != nil {
		WriteError(w, http.StatusInternalServerError, "INTERNAL_ERROR", "internal error")
		return
	}
	write(w, status, body)
}

// WriteError writes {"success":false,"error":{"code":code,"message":message}}
// with the given status.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	// Marshalling two strings cannot fail.
	body, _ := json.Marshal(errorEnvelope{Error: Error{Code: code, Message: message}})
	write(w, status, body)
}

func write(w http.ResponseWriter, status int, body []byte) {
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	// Responses carry sessions, tokens and personal data; no cache may keep them.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client went away; nothing useful to do
}
