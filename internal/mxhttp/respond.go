package mxhttp

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// MaxBodyBytes caps request bodies unless a route asks for another limit.
const MaxBodyBytes = 1 << 20

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"errcode":"M_UNKNOWN","error":"encoding response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// WriteError writes err as a Matrix error, logging server-side failures.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	me := ToMatrix(err)
	if me.Status >= 500 && log != nil {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	body := map[string]any{"errcode": me.Code, "error": me.Message}
	for k, v := range me.Extra {
		body[k] = v
	}
	WriteJSON(w, me.Status, body)
}

// DecodeJSON reads a JSON object body into v: more than limit bytes is 413
// M_TOO_LARGE, invalid JSON or UTF-8 is M_NOT_JSON, a value of the wrong
// shape is M_BAD_JSON. limit <= 0 means MaxBodyBytes.
func DecodeJSON(r *http.Request, limit int64, v any) error {
	raw, err := ReadBody(r, limit)
	if err != nil {
		return err
	}
	return UnmarshalBody(raw, v)
}

// ReadBody reads the raw body, checking its size, that it is UTF-8 text
// (checkText), that it is a JSON object, and that no object in it repeats a
// key (dupkeys.go).
func ReadBody(r *http.Request, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = MaxBodyBytes
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, BadJSON("reading body: %v", err)
	}
	if int64(len(raw)) > limit {
		return nil, Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "request body over %d bytes", limit)
	}
	if err := checkText(raw); err != nil {
		return nil, err
	}
	trimmed := strings.TrimSpace(string(raw))
	if trimmed == "" {
		trimmed = "{}"
		raw = []byte(trimmed)
	}
	if !json.Valid(raw) {
		return nil, NotJSON("body is not valid JSON")
	}
	if trimmed[0] != '{' {
		return nil, BadJSON("body must be a JSON object")
	}
	if err := checkDuplicateKeys(raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// UnmarshalBody decodes a body that ReadBody accepted.
func UnmarshalBody(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return BadJSON("field %q: expected %s", te.Field, te.Type)
		}
		return BadJSON("%v", err)
	}
	return nil
}
