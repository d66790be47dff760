package identity

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Sentinel errors a controller matches with errors.Is to decide what to do. Every error
// the client returns for a refused or failed call matches exactly one of them (a
// forbidden flag also matches ErrInvalid, because it is a validation refusal too, and a
// tenant taken for down ErrUnavailable, because it is that too).
var (
	// ErrNotFound: the object does not exist (404). Deletes treat it as success.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the object already exists (409). A create that had to be retried after
	// a network error or a 5xx may get it for the object its own first attempt created:
	// the controller should look the object up by name and adopt it.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the platform refused the request as such (400 and other 4xx); the
	// message says why. Retrying the same request will not help.
	ErrInvalid = errors.New("invalid request")
	// ErrForbiddenFlag: the platform refused to set a tenant flag ("You are not allowed
	// to set flag ...", or a flag it does not have: "Additional properties not allowed:
	// ... on property flags"). Terminal for the controller: errors.As gives the flag
	// name through *ForbiddenFlagError.
	ErrForbiddenFlag = errors.New("forbidden flag")
	// ErrUnauthorized: the credentials are wrong or the client has no grant for the
	// Management API (401, and access_denied from /oauth/token).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrInsufficientScope: the token lacks a scope the call needs (403).
	ErrInsufficientScope = errors.New("insufficient scope")
	// ErrRateLimited: the tenant's rate limit was still exhausted when the client gave
	// up waiting (retries spent or the context deadline too close). APIError.RetryAfter
	// says when to try again.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: the platform kept failing (5xx) or could not be reached (network
	// errors) after the client's retries.
	ErrUnavailable = errors.New("unavailable")
	// ErrTenantDown: the tenant failed several requests in a row and is taken for down
	// (its breaker is open), so the call failed at once without a request. It also
	// matches ErrUnavailable. errors.As gives *TenantDownError, which says since when
	// and when the next probe is due.
	ErrTenantDown = errors.New("tenant down")
)

// APIError is a refusal or failure of one operation. It carries what the platform said
// (never what the client sent: request bodies may hold secrets) and matches one of the
// sentinel errors with errors.Is.
type APIError struct {
	// Operation names the client method that failed, e.g. "PatchTenantSettings".
	Operation string
	// StatusCode is the HTTP status of the last response, 0 for a network error.
	StatusCode int
	// Err is the platform's short error name, the "error" field ("Not Found").
	Err string
	// ErrorCode is the platform's machine-readable code ("inexistent_connection"),
	// empty when the platform sent none.
	ErrorCode string
	// Message is the platform's human-readable message, or a description of a network
	// failure.
	Message string
	// Attempts is how many requests the operation sent. More than one on a create means
	// an earlier attempt may have been applied (see ErrConflict).
	Attempts int
	// RetryAfter is how long the platform asked to wait, for rate-limit errors.
	RetryAfter time.Duration

	kind error
	// cause is a network or decoding error behind the failure, if any.
	cause error
}

// Error names the operation, the status and the platform's message.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("identity: ")
	b.WriteString(e.Operation)
	b.WriteString(": ")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "%d", e.StatusCode)
		if e.Err != "" {
			b.WriteString(" ")
			b.WriteString(e.Err)
		}
	} else if e.kind != nil {
		b.WriteString(e.kind.Error())
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.ErrorCode != "" {
		b.WriteString(" (")
		b.WriteString(e.ErrorCode)
		b.WriteString(")")
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

// Is reports whether target is the sentinel this error is classified as.
func (e *APIError) Is(target error) bool {
	if target == e.kind {
		return true
	}
	return e.kind == ErrForbiddenFlag && target == ErrInvalid
}

// Unwrap gives the underlying network or decoding error, if any, so that callers can
// still match context.DeadlineExceeded and the like.
func (e *APIError) Unwrap() error { return e.cause }

// TenantDownError is a call the client did not send because the tenant is taken for
// down: requests to it failed (5xx, or no answer) several times in a row. One probe
// request at a time, at growing intervals, finds out when it is back; until then every
// call of every client of the tenant fails at once with this error. It matches
// ErrTenantDown and ErrUnavailable.
type TenantDownError struct {
	// Operation names the client method that was refused.
	Operation string
	// Domain is the tenant's domain.
	Domain string
	// Since is when the first of the failed requests failed.
	Since time.Time
	// NextProbe is when the next probe request is due; a call made from then on may be
	// that probe.
	NextProbe time.Time
	// RetryAfter is how long from the refusal to NextProbe (by the client's clock).
	RetryAfter time.Duration
	// Failures is how many requests in a row the tenant did not answer.
	Failures int

	// cause is the newest failure, an *APIError or a network error.
	cause error
}

// Error says since when the tenant has not answered, the newest failure, and when the
// next probe is due.
func (e *TenantDownError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "identity: %s: %s has not answered since %s (%d requests in a row failed",
		e.Operation, e.Domain, e.Since.UTC().Format(time.RFC3339), e.Failures)
	if e.cause != nil {
		b.WriteString(", the last: ")
		b.WriteString(strings.TrimPrefix(e.cause.Error(), "identity: "))
	}
	fmt.Fprintf(&b, "); next probe at %s", e.NextProbe.UTC().Format(time.RFC3339))
	return b.String()
}

// Is matches ErrTenantDown and ErrUnavailable.
func (e *TenantDownError) Is(target error) bool {
	return target == ErrTenantDown || target == ErrUnavailable
}

// Unwrap gives the newest failure.
func (e *TenantDownError) Unwrap() error { return e.cause }

// ForbiddenFlagError is the refusal to set one tenant flag. It wraps the *APIError, so
// both errors.As targets work.
type ForbiddenFlagError struct {
	// Flag is the flag the platform refused, as it named it.
	Flag string
	// APIError is the platform's answer.
	APIError *APIError
}

// Error names the refused flag and the platform's message.
func (e *ForbiddenFlagError) Error() string { return e.APIError.Error() }

// Unwrap gives the *APIError, which matches ErrForbiddenFlag and ErrInvalid.
func (e *ForbiddenFlagError) Unwrap() error { return e.APIError }

// forbiddenFlagRE matches the platform's refusal, e.g. `You are not allowed to set flag
// 'disable_impersonation'`; the flag may be quoted or bare.
var forbiddenFlagRE = regexp.MustCompile(`(?i)you are not allowed to set flag\s*[:'"` + "`" + `]?\s*([A-Za-z0-9_.\-]+)`)

// unknownFlagRE matches the schema refusal of a flag the platform does not have (or no
// longer has), e.g. `Payload validation error: 'Additional properties not allowed:
// change_pwd_flow_v1' on property flags (Flags used to enable/disable features).`. The
// same refusal of a top-level key (no "on property flags") is not about a flag.
var unknownFlagRE = regexp.MustCompile(`(?i)additional properties not allowed:\s*([A-Za-z0-9_.\-]+)'?\s+on property flags\b`)

// parseForbiddenFlag returns the flag name from a forbidden-flag or unknown-flag message.
func parseForbiddenFlag(msg string) (string, bool) {
	m := forbiddenFlagRE.FindStringSubmatch(msg)
	if m == nil {
		m = unknownFlagRE.FindStringSubmatch(msg)
	}
	if m == nil {
		return "", false
	}
	return strings.TrimRight(m[1], "."), true
}

// maxMessageLen bounds the platform message kept in an error: it ends up in conditions,
// which should stay readable.
const maxMessageLen = 512

// classify turns a non-2xx response of the Management API into a typed error.
func classify(op string, status int, body apiErrorBody, attempts int) error {
	e := &APIError{
		Operation:  op,
		StatusCode: status,
		Err:        body.Error,
		ErrorCode:  body.ErrorCode,
		Message:    truncate(body.Message, maxMessageLen),
		Attempts:   attempts,
	}
	if e.Err == "" {
		e.Err = http.StatusText(status)
	}
	switch {
	case status == http.StatusNotFound:
		e.kind = ErrNotFound
	case status == http.StatusConflict:
		e.kind = ErrConflict
	case status == http.StatusUnauthorized:
		e.kind = ErrUnauthorized
	case status == http.StatusForbidden && (body.ErrorCode == "insufficient_scope" ||
		strings.Contains(strings.ToLower(body.Message), "insufficient scope")):
		e.kind = ErrInsufficientScope
	case status == http.StatusTooManyRequests:
		e.kind = ErrRateLimited
	case status >= 500:
		e.kind = ErrUnavailable
	default:
		e.kind = ErrInvalid
		if flag, ok := parseForbiddenFlag(body.Message); ok {
			e.kind = ErrForbiddenFlag
			return &ForbiddenFlagError{Flag: flag, APIError: e}
		}
	}
	return e
}

// networkError wraps a transport failure after the retries are spent.
func networkError(op string, attempts int, cause error) *APIError {
	return &APIError{
		Operation: op,
		Message:   "cannot reach the identity API",
		Attempts:  attempts,
		kind:      ErrUnavailable,
		cause:     cause,
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
