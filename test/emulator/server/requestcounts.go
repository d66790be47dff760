package server

import (
	"fmt"
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
