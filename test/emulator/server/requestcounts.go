package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
)

// RequestCounts counts requests by "METHOD /route/pattern", such as
// "GET /api/v2/tenants/settings": one tenant's (Server.Requests), or several
// tenants' added up.
type RequestCounts map[string]int

// Count returns the requests for one route, e.g.
// Count("PATCH", "/api/v2/connections/{id}").
func (c RequestCounts) Count(method, pattern string) int { return c[method+" "+pattern] }

// ManagementReads counts Management API GETs.
func (c RequestCounts) ManagementReads() int {
	return c.sum(func(m, p string) bool { return m == "GET" && strings.HasPrefix(p, "/api/v2/") })
}

// ManagementWrites counts Management API POST, PATCH, PUT and DELETE.
func (c RequestCounts) ManagementWrites() int {
	return c.sum(func(m, p string) bool { return m != "GET" && strings.HasPrefix(p, "/api/v2/") })
}

// Tokens counts token requests.
func (c RequestCounts) Tokens() int { return c.Count("POST", "/oauth/token") }

// Total counts every request.
func (c RequestCounts) Total() int { return c.sum(func(string, string) bool { return true }) }

func (c RequestCounts) sum(keep func(method, pattern string) bool) int {
	n := 0
	for k, v := range c {
		m, p, _ := strings.Cut(k, " ")
		if keep(m, p) {
			n += v
		}
	}
	return n
}

// Add adds other's counters to c.
func (c RequestCounts) Add(other RequestCounts) {
	for k, v := range other {
		c[k] += v
	}
}

// Minus is c with before's counters taken away.
func (c RequestCounts) Minus(before RequestCounts) RequestCounts {
	out := RequestCounts{}
	for k, v := range c {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// Lines are the counters, one "METHOD /route  n" a line, sorted.
func (c RequestCounts) Lines() []string {
	var out []string
	for k, v := range c {
		out = append(out, fmt.Sprintf("%-48s %d", k, v))
	}
	sort.Strings(out)
	return out
}

// Write is one Management API write a tenant received (POST, PATCH, PUT or
// DELETE under /api/v2/), with its body as sent, so that a test can check
// exactly what a client wrote. Bodies may hold secrets: a test compares
// them, never prints them.
type Write struct {
	// Method and Pattern name the route, as in RequestCounts.
	Method, Pattern string
	// Path is the request's path, ids included.
	Path string
	// Body is the request body as received (at most maxWriteBody bytes).
	Body []byte
}

// maxWrites bounds the writes kept per tenant (the oldest go first), and
// maxWriteBody the body kept of each.
const (
	maxWrites    = 256
	maxWriteBody = 1 << 20
)

// recordedWrite reads a Management API write's body, leaving it for the
// handler to read again, and returns the record; nil for anything else.
func recordedWrite(r *http.Request, pattern string) *Write {
	if r.Method == http.MethodGet || r.Method == http.MethodHead || !strings.HasPrefix(r.URL.Path, "/api/v2/") {
		return nil
	}
	w := &Write{Method: r.Method, Pattern: strings.TrimPrefix(pattern, r.Method+" "), Path: r.URL.Path}
	if r.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxWriteBody))
		w.Body = body
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
	}
	return w
}
