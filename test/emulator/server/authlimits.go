package server

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tenantops/identity-operator/test/emulator/internal/ratelimit"
)

// AuthEndpointLimits are the Authentication API's limits per endpoint, which
// the platform applies on top of the tenant-wide Authentication API limit
// (Config.RateLimit), each counted by what the platform counts it by. A
// zero Limit turns that endpoint's limit off; the zero value turns them
// all off.
//
// The platform documents them per plan
// (https://auth0.com/docs/troubleshoot/customer-support/operational-policies/rate-limit-policy/authentication-api-endpoint-rate-limits
// and .../rate-limit-configurations/free-public); FreePlanAuthLimits and
// PaidPlanAuthLimits are those tables.
type AuthEndpointLimits struct {
	// Token is POST /oauth/token, any request.
	Token RateLimit `json:"token"`
	// CrossOriginAuthenticate is POST /co/authenticate, any request.
	CrossOriginAuthenticate RateLimit `json:"co_authenticate"`
	// JWKS is GET /.well-known/jwks.json, any request.
	JWKS RateLimit `json:"jwks"`
	// UserInfo is GET /userinfo, per user.
	UserInfo RateLimit `json:"userinfo"`
	// Signup is POST /dbconnections/signup, per IP address.
	Signup RateLimit `json:"signup"`
	// ChangePassword is POST /dbconnections/change_password, per IP address
	// and email.
	ChangePassword RateLimit `json:"change_password"`
}

func perMinute(n float64) float64 { return n / 60 }

// FreePlanAuthLimits are the documented limits of a Free tenant: /oauth/token
// 30 at once and 30 a second, /co/authenticate 5 and 5 a second, the JWKS 20
// and 20 a second, /userinfo 10 at once and 5 a minute per user,
// /dbconnections/signup 50 and 50 a minute per IP, change_password 10 at
// once and 1 a minute from an IP to an email.
var FreePlanAuthLimits = AuthEndpointLimits{
	Token:                   RateLimit{Burst: 30, PerSecond: 30},
	CrossOriginAuthenticate: RateLimit{Burst: 5, PerSecond: 5},
	JWKS:                    RateLimit{Burst: 20, PerSecond: 20},
	UserInfo:                RateLimit{Burst: 10, PerSecond: perMinute(5)},
	Signup:                  RateLimit{Burst: 50, PerSecond: perMinute(50)},
	ChangePassword:          RateLimit{Burst: 10, PerSecond: perMinute(1)},
}

// PaidPlanAuthLimits are the documented per-endpoint limits of a paying
// customer's production tenant: /userinfo, signup and change_password as on
// the Free plan; /oauth/token, /co/authenticate and the JWKS only under the
// tenant-wide limit.
var PaidPlanAuthLimits = AuthEndpointLimits{
	UserInfo:       FreePlanAuthLimits.UserInfo,
	Signup:         FreePlanAuthLimits.Signup,
	ChangePassword: FreePlanAuthLimits.ChangePassword,
}

// AuthLimitPlans name the presets for flags and the admin API.
var AuthLimitPlans = map[string]AuthEndpointLimits{"off": {}, "free": FreePlanAuthLimits, "paid": PaidPlanAuthLimits}

// authEndpoint names an endpoint with a limit of its own.
type authEndpoint int

const (
	epToken authEndpoint = iota
	epCrossOrigin
	epJWKS
	epUserInfo
	epSignup
	epChangePassword
	epCount
)

func (l AuthEndpointLimits) of(ep authEndpoint) RateLimit {
	return [epCount]RateLimit{l.Token, l.CrossOriginAuthenticate, l.JWKS, l.UserInfo, l.Signup, l.ChangePassword}[ep]
}

// endpointLimiters are one tenant's per-endpoint buckets.
type endpointLimiters [epCount]*ratelimit.Keyed

func newEndpointLimiters(l AuthEndpointLimits) *endpointLimiters {
	var e endpointLimiters
	for ep := authEndpoint(0); ep < epCount; ep++ {
		e[ep] = ratelimit.NewKeyed(l.of(ep))
	}
	return &e
}

// AuthEndpointLimits returns the per-endpoint limits in force.
func (s *Server) AuthEndpointLimits() AuthEndpointLimits {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authLimits
}

// SetAuthEndpointLimits replaces the per-endpoint limits of every tenant;
// every bucket starts full.
func (s *Server) SetAuthEndpointLimits(l AuthEndpointLimits) {
	s.mu.Lock()
	s.authLimits = l
	s.mu.Unlock()
	s.tenants.Range(func(_, v any) bool {
		v.(*tenantState).endpoints.Store(newEndpointLimiters(l))
		return true
	})
}

// clientIP is the address a request came from.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// tooManyAuthRequests is the Authentication API's 429 body (the wording is
// unverified).
const tooManyAuthRequests = "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset headers."

// withinEndpointLimit takes a token from the endpoint's bucket for key; it
// answers the X-RateLimit-* headers of that bucket (they replace the
// tenant-wide ones) and, when it is empty, 429 with Retry-After.
func (s *Server) withinEndpointLimit(w http.ResponseWriter, r *http.Request, ep authEndpoint, key string) bool {
	v, ok := s.tenants.Load(tenantOf(r))
	if !ok {
		return true
	}
	lim := v.(*tenantState).endpoints.Load()
	now := time.Now()
	if lim[ep] == nil || s.AuthEndpointLimits().of(ep).Off() {
		return true
	}
	d := lim[ep].Take(strings.ToLower(key), now)
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(d.Reset.Unix()+boolInt(d.Reset.Nanosecond() > 0), 10))
	if d.Allowed {
		return true
	}
	h.Set("Retry-After", strconv.Itoa(int(math.Ceil(d.RetryAfter.Seconds()))))
	oauthError(w, http.StatusTooManyRequests, "too_many_requests", tooManyAuthRequests)
	return false
}
