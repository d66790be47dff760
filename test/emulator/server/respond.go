package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// writeJSON answers v with the platform's content type.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// apiError is the Management API's error body.
type apiError struct {
	StatusCode int            `json:"statusCode"`
	Error      string         `json:"error"`
	Message    string         `json:"message"`
	ErrorCode  string         `json:"errorCode,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// mgmtError answers a Management API error.
func mgmtError(w http.ResponseWriter, status int, errorCode, message string) {
	writeJSON(w, status, apiError{StatusCode: status, Error: http.StatusText(status), Message: message, ErrorCode: errorCode})
}

func invalidBody(w http.ResponseWriter, detail string) {
	mgmtError(w, http.StatusBadRequest, "invalid_body", payloadError(detail))
}

func invalidQuery(w http.ResponseWriter, detail string) {
	mgmtError(w, http.StatusBadRequest, "invalid_query_string", "Query validation error: "+detail)
}

// oauthError answers an Authentication API error ({"error","error_description"}).
func oauthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// dbError answers a /dbconnections error in the shape the signup errors have.
func dbError(w http.ResponseWriter, status int, name, code, description string) {
	writeJSON(w, status, map[string]any{"name": name, "code": code, "description": description, "statusCode": status})
}

var errBadJSON = errors.New("Invalid request payload JSON format")

// decodeObject reads a JSON object body. Clients may end it with a newline.
func decodeObject(r *http.Request) (map[string]any, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, errBadJSON
	}
	if dec.More() {
		return nil, errBadJSON
	}
	return m, nil
}

// readArray decodes a body that is a JSON array or answers the platform's
// 400 and returns false.
func readArray(w http.ResponseWriter, r *http.Request) ([]any, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var a []any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err == nil {
		err = dec.Decode(&a)
	}
	if err != nil || a == nil || dec.More() {
		mgmtError(w, http.StatusBadRequest, "invalid_body", errBadJSON.Error())
		return nil, false
	}
	return normalizeNumbers(a).([]any), true
}

// readObject decodes the body or answers the platform's 400 and returns false.
func readObject(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	m, err := decodeObject(r)
	if err != nil {
		mgmtError(w, http.StatusBadRequest, "invalid_body", errBadJSON.Error())
		return nil, false
	}
	return normalizeNumbers(m).(map[string]any), true
}

// readFields is readObject for a body whose keys must be among allowed: the
// first other key is answered with the platform's 400.
func readFields(w http.ResponseWriter, r *http.Request, allowed []string) (map[string]any, bool) {
	body, ok := readObject(w, r)
	if !ok {
		return nil, false
	}
	if k := unknownField(body, allowed); k != "" {
		invalidBody(w, "'Additional properties not allowed: "+k+"'")
		return nil, false
	}
	return body, true
}

// normalizeNumbers turns json.Number into int64 when integral, else float64,
// so stored documents answer integers as integers.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
		return x
	}
	return v
}

// Type checks used by the payload validators. Numbers decoded by
// normalizeNumbers are int64 or float64; documents read back from the store
// hold float64.
func isString(v any) bool { _, ok := v.(string); return ok }
func isBool(v any) bool   { _, ok := v.(bool); return ok }
func isNumber(v any) bool {
	switch v.(type) {
	case int64, float64, int:
		return true
	}
	return false
}
func isInteger(v any) bool {
	switch x := v.(type) {
	case int64, int:
		return true
	case float64:
		return x == float64(int64(x))
	}
	return false
}
func isObject(v any) bool { _, ok := v.(map[string]any); return ok }
func isStringArray(v any) bool {
	a, ok := v.([]any)
	if !ok {
		return false
	}
	for _, e := range a {
		if !isString(e) {
			return false
		}
	}
	return true
}

func toInt(v any) int {
	switch x := v.(type) {
	case int64:
		return int(x)
	case int:
		return x
	case float64:
		return int(x)
	}
	return 0
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case int64, int:
		return "integer"
	case float64:
		return "number"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case nil:
		return "null"
	}
	return "unknown"
}

func strOf(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func boolOf(m map[string]any, k string) bool {
	b, _ := m[k].(bool)
	return b
}

// deepCopy copies a JSON-shaped value.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

func copyMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return deepCopy(m).(map[string]any)
}
