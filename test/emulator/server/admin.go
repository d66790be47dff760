package server

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tenantops/identity-operator/test/emulator/internal/ratelimit"
	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// RateLimit is a token bucket setting: Burst requests at once, refilled at
// PerSecond. The zero value means no limit.
type RateLimit = ratelimit.Limit

// Mail is a message in a tenant's outbox.
type Mail = store.Mail

// UserSeed describes a user the admin API puts straight into a tenant's
// store, e.g. to give a test users to count or a user with a linked
// identity-provider account.
type UserSeed struct {
	Connection string         `json:"connection"`
	Email      string         `json:"email"`
	Username   string         `json:"username,omitempty"`
	Password   string         `json:"password,omitempty"`
	Profile    map[string]any `json:"profile,omitempty"`
	// Identities are appended to the database identity, e.g.
	// {"provider":"google-oauth2","user_id":"1","connection":"google-oauth2",
	// "isSocial":true,"access_token":"..."}.
	Identities []map[string]any `json:"identities,omitempty"`
}

// CreateUser puts a user into a connection's store and returns its user_id.
func (s *Server) CreateUser(domain string, seed UserSeed) (string, error) {
	var id string
	err := s.store.Tx(func(q store.Q) error {
		c, err := q.ConnectionByName(domain, seed.Connection)
		if err != nil {
			return errors.New("unknown connection " + seed.Connection)
		}
		u, msg, err := newDatabaseUser(q, c, userSpec{Email: seed.Email, Username: seed.Username, Password: seed.Password, Profile: seed.Profile}, s.now())
		if err != nil {
			return err
		}
		if msg != "" {
			return errors.New(msg)
		}
		ids := u.Doc["identities"].([]any)
		for _, extra := range seed.Identities {
			ids = append(ids, deepCopy(extra))
		}
		u.Doc["identities"] = ids
		id = u.UserID
		return q.CreateUser(u)
	})
	return id, err
}

// User returns a stored user with everything (identity-provider tokens too).
func (s *Server) User(domain, userID string) (map[string]any, error) {
	u, err := s.store.Q().User(domain, userID)
	if err != nil {
		return nil, err
	}
	return u.Doc, nil
}

// Connection returns a connection by name as the API answers it, except
// that options.configuration holds the plain values (for tests that check
// what a client sent).
func (s *Server) Connection(domain, name string) (map[string]any, error) {
	c, err := s.store.Q().ConnectionByName(domain, name)
	if err != nil {
		return nil, err
	}
	v := connectionView(c)
	opts := copyMap(c.Options)
	if _, ok := opts["configuration"]; ok {
		plain := map[string]any{}
		for k, p := range s.plainConfiguration(c) {
			plain[k] = p
		}
		opts["configuration"] = plain
	}
	v["options"] = opts
	return v, nil
}

// ConnectionNames lists the names of a tenant's connections in creation
// order, one entry per connection: a name twice is a duplicate.
func (s *Server) ConnectionNames(domain string) ([]string, error) {
	cs, _, err := s.store.Q().Connections(domain, store.ConnectionFilter{}, 0, -1)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(cs))
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names, nil
}

// CountUsers counts a connection's users in the platform's store.
func (s *Server) CountUsers(domain, connection string) (int, error) {
	return s.store.Q().CountUsers(domain, connection)
}

// EmailProvider returns the tenant's provider, credentials included.
func (s *Server) EmailProvider(domain string) (map[string]any, error) {
	return s.store.Q().EmailProvider(domain)
}

// EmailTemplate returns a stored email template.
func (s *Server) EmailTemplate(domain, name string) (map[string]any, error) {
	return s.store.Q().EmailTemplate(domain, name)
}

// Outbox lists the mail a tenant sent, oldest first.
func (s *Server) Outbox(domain string) ([]Mail, error) { return s.store.Q().Outbox(domain) }

// RefusedFlags lists the flags a tenant's settings PATCH refuses.
func (s *Server) RefusedFlags(domain string) ([]string, error) {
	t, err := s.store.Q().Tenant(domain)
	return t.RefusedFlags, err
}

// SetRateLimit sets the limit of one tenant (domain != ""; l nil returns it
// to the default) or the default of every tenant without its own
// (domain == ""). Buckets restart full.
func (s *Server) SetRateLimit(domain string, l *RateLimit) error {
	now := time.Now()
	if domain == "" {
		if l == nil {
			l = &RateLimit{}
		}
		s.mu.Lock()
		s.defaultRL = *l
		s.mu.Unlock()
		s.tenants.Range(func(_, v any) bool {
			st := v.(*tenantState)
			if st.override == nil {
				st.mgmt.SetLimit(*l, now)
				st.auth.SetLimit(*l, now)
			}
			return true
		})
		return nil
	}
	v, ok := s.tenants.Load(domain)
	if !ok {
		return ErrUnknownTenant
	}
	err := s.store.Tx(func(q store.Q) error {
		t, err := q.Tenant(domain)
		if err != nil {
			return err
		}
		t.RateLimit = l
		return q.PutTenant(t)
	})
	if err != nil {
		return err
	}
	st := v.(*tenantState)
	st.override = l
	eff := s.limitFor(l)
	st.mgmt.SetLimit(eff, now)
	st.auth.SetLimit(eff, now)
	return nil
}

// Faults returns the fault injection setting.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// SetFaults replaces the fault injection setting.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// Requests returns how many requests a tenant received since start (or the
// last ResetRequests), keyed by "METHOD /route/pattern", e.g.
// "GET /api/v2/tenants/settings" or "PATCH /api/v2/connections/{id}".
// Requests refused with 429 or an injected fault are counted too.
func (s *Server) Requests(domain string) RequestCounts {
	v, ok := s.tenants.Load(domain)
	if !ok {
		return RequestCounts{}
	}
	st := v.(*tenantState)
	st.mu.Lock()
	defer st.mu.Unlock()
	return maps.Clone(st.counts)
}

// Writes returns the Management API writes a tenant received since start
// (or the last ResetRequests), oldest first, bodies included (the last
// 256). Writes refused with 429 or an injected fault are listed too.
func (s *Server) Writes(domain string) []Write {
	v, ok := s.tenants.Load(domain)
	if !ok {
		return nil
	}
	st := v.(*tenantState)
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.writes)
}

// ResetRequests zeroes a tenant's request counters.
func (s *Server) ResetRequests(domain string) {
	if v, ok := s.tenants.Load(domain); ok {
		st := v.(*tenantState)
		st.mu.Lock()
		st.counts = map[string]int{}
		st.writes = nil
		st.mu.Unlock()
	}
}

// adminRoutes is the admin API, served for the Host 127.0.0.1, ::1 or
// localhost and guarded by the bearer token in DATA/admin-token. It is never
// rate limited and never faulted.
func (s *Server) adminRoutes() *http.ServeMux {
	m := http.NewServeMux()
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request) (int, any, error)) {
		m.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			if subtle.ConstantTimeCompare([]byte(tok), []byte(s.adminToken)) != 1 {
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "admin token required (see DATA/admin-token)"})
				return
			}
			status, v, err := fn(w, r)
			switch {
			case errors.Is(err, ErrUnknownTenant) || errors.Is(err, store.ErrNotFound):
				writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			case errors.Is(err, ErrTenantExists):
				writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
			case err != nil:
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			case status == http.StatusNoContent:
				w.WriteHeader(status)
			default:
				writeJSON(w, status, v)
			}
		})
	}
	decode := func(r *http.Request, v any) error {
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		if err := dec.Decode(v); err != nil {
			return errors.New("invalid JSON body: " + err.Error())
		}
		return nil
	}
	h("GET /admin/v1/tenants", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		ts, err := s.Tenants()
		return http.StatusOK, ts, err
	})
	h("POST /admin/v1/tenants", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		var body struct {
			Domain   string         `json:"domain"`
			Settings map[string]any `json:"settings"`
			Legacy   bool           `json:"legacy"`
		}
		if err := decode(r, &body); err != nil {
			return 0, nil, err
		}
		settings := normalizeNumbers(copyMap(body.Settings)).(map[string]any)
		if body.Legacy {
			mergeSettings(settings, LegacySettings())
		}
		c, err := s.CreateTenant(body.Domain, settings)
		return http.StatusCreated, c, err
	})
	h("POST /admin/v1/tenants/{domain}/clients", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		var body struct {
			Name       string   `json:"name"`
			Scopes     []string `json:"scopes"`
			GrantTypes []string `json:"grant_types"`
		}
		if err := decode(r, &body); err != nil {
			return 0, nil, err
		}
		c, err := s.MintClient(r.PathValue("domain"), body.Name, body.Scopes, body.GrantTypes)
		return http.StatusCreated, c, err
	})
	h("GET /admin/v1/tenants/{domain}/settings", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		v, err := s.Settings(r.PathValue("domain"))
		return http.StatusOK, v, err
	})
	h("PATCH /admin/v1/tenants/{domain}/settings", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		var body map[string]any
		if err := decode(r, &body); err != nil {
			return 0, nil, err
		}
		v, err := s.PatchSettings(r.PathValue("domain"), normalizeNumbers(body).(map[string]any))
		return http.StatusOK, v, err
	})
	h("GET /admin/v1/tenants/{domain}/refused-flags", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		v, err := s.RefusedFlags(r.PathValue("domain"))
		return http.StatusOK, v, err
	})
	h("PUT /admin/v1/tenants/{domain}/refused-flags", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		var flags []string
		if err := decode(r, &flags); err != nil {
			return 0, nil, err
		}
		return http.StatusOK, flags, s.SetRefusedFlags(r.PathValue("domain"), flags)
	})
	h("PUT /admin/v1/tenants/{domain}/rate-limit", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		var l *RateLimit
		if err := decode(r, &l); err != nil {
			return 0, nil, err
		}
		return http.StatusOK, l, s.SetRateLimit(r.PathValue("domain"), l)
	})
	h("PUT /admin/v1/rate-limit", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		var l RateLimit
		if err := decode(r, &l); err != nil {
			return 0, nil, err
		}
		return http.StatusOK, l, s.SetRateLimit("", &l)
	})
	h("GET /admin/v1/auth-endpoint-limits", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		return http.StatusOK, s.AuthEndpointLimits(), nil
	})
	h("PUT /admin/v1/auth-endpoint-limits", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		// A plan name ("off", "free", "paid") or the limits themselves.
		var raw json.RawMessage
		if err := decode(r, &raw); err != nil {
			return 0, nil, err
		}
		var (
			plan string
			l    AuthEndpointLimits
		)
		if json.Unmarshal(raw, &plan) == nil {
			var ok bool
			if l, ok = AuthLimitPlans[plan]; !ok {
				return 0, nil, errors.New("unknown plan " + plan + ": off, free or paid")
			}
		} else if err := json.Unmarshal(raw, &l); err != nil {
			return 0, nil, errors.New("invalid limits: " + err.Error())
		}
		s.SetAuthEndpointLimits(l)
		return http.StatusOK, l, nil
	})
	h("PUT /admin/v1/faults", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		var body struct {
			ErrorRate     float64  `json:"error_rate"`
			LostReplyRate float64  `json:"lost_reply_rate"`
			Latency       string   `json:"latency"`
			Down          []string `json:"down"`
		}
		if err := decode(r, &body); err != nil {
			return 0, nil, err
		}
		f := Faults{ErrorRate: body.ErrorRate, LostReplyRate: body.LostReplyRate, Down: body.Down}
		if body.Latency != "" {
			d, err := time.ParseDuration(body.Latency)
			if err != nil {
				return 0, nil, err
			}
			f.Latency = d
		}
		if f.ErrorRate < 0 || f.ErrorRate > 1 || f.LostReplyRate < 0 || f.LostReplyRate > 1 {
			return 0, nil, errors.New("error_rate and lost_reply_rate must be between 0 and 1")
		}
		s.SetFaults(f)
		return http.StatusOK, map[string]any{"error_rate": f.ErrorRate, "lost_reply_rate": f.LostReplyRate, "latency": f.Latency.String(), "down": f.Down}, nil
	})
	h("POST /admin/v1/clock", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		var body struct {
			Advance string `json:"advance"`
		}
		if err := decode(r, &body); err != nil {
			return 0, nil, err
		}
		d, err := time.ParseDuration(body.Advance)
		if err != nil || d < 0 {
			return 0, nil, errors.New("advance must be a non-negative Go duration such as 1h30m")
		}
		s.AdvanceClock(d)
		return http.StatusOK, map[string]string{"now": timestamp(s.now())}, nil
	})
	h("GET /admin/v1/tenants/{domain}/outbox", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		if !s.hasTenant(r.PathValue("domain")) {
			return 0, nil, ErrUnknownTenant
		}
		v, err := s.Outbox(r.PathValue("domain"))
		if v == nil {
			v = []Mail{}
		}
		return http.StatusOK, v, err
	})
	h("GET /admin/v1/tenants/{domain}/connections/{name}", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		v, err := s.Connection(r.PathValue("domain"), r.PathValue("name"))
		return http.StatusOK, v, err
	})
	h("GET /admin/v1/tenants/{domain}/email-provider", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		v, err := s.EmailProvider(r.PathValue("domain"))
		return http.StatusOK, v, err
	})
	h("GET /admin/v1/tenants/{domain}/email-templates/{name}", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		v, err := s.EmailTemplate(r.PathValue("domain"), r.PathValue("name"))
		return http.StatusOK, v, err
	})
	h("POST /admin/v1/tenants/{domain}/users", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		var seed UserSeed
		if err := decode(r, &seed); err != nil {
			return 0, nil, err
		}
		seed.Profile = normalizeNumbers(copyMap(seed.Profile)).(map[string]any)
		id, err := s.CreateUser(r.PathValue("domain"), seed)
		return http.StatusCreated, map[string]string{"user_id": id}, err
	})
	h("POST /admin/v1/tenants/{domain}/actions", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		var seed ActionSeed
		if err := decode(r, &seed); err != nil {
			return 0, nil, err
		}
		id, err := s.SeedAction(r.PathValue("domain"), seed)
		return http.StatusCreated, map[string]string{"id": id}, err
	})
	h("GET /admin/v1/tenants/{domain}/users/{id}", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		v, err := s.User(r.PathValue("domain"), r.PathValue("id"))
		return http.StatusOK, v, err
	})
	h("GET /admin/v1/tenants/{domain}/requests", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		if !s.hasTenant(r.PathValue("domain")) {
			return 0, nil, ErrUnknownTenant
		}
		return http.StatusOK, s.Requests(r.PathValue("domain")), nil
	})
	h("DELETE /admin/v1/tenants/{domain}/requests", func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		s.ResetRequests(r.PathValue("domain"))
		return http.StatusNoContent, nil, nil
	})
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found; the admin API lives under /admin/v1/"})
	})
	return m
}

// LegacySettings are the flags of a tenant that has not yet opted into the
// password-flow and profile migrations (a tenant created before their grace
// periods started).
func LegacySettings() map[string]any {
	return map[string]any{"flags": map[string]any{"change_pwd_flow_v1": true, "enable_legacy_profile": true}}
}
