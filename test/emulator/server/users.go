package server

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/tenantops/identity-operator/test/emulator/internal/password"
	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

var queryTermRE = regexp.MustCompile(`^([a-z_.]+):(?:"((?:[^"\\]|\\.)*)"|([^\s"*]+))$`)

// parseUserQuery understands the Lucene subset the operator uses: terms
// field:"value" or field:value joined by AND, on identities.connection,
// email, username and user_id.
func parseUserQuery(q string) (store.UserFilter, string) {
	var f store.UserFilter
	q = strings.TrimSpace(q)
	if q == "" {
		return f, ""
	}
	for _, term := range regexp.MustCompile(`\s+AND\s+`).Split(q, -1) {
		m := queryTermRE.FindStringSubmatch(strings.TrimSpace(term))
		if m == nil {
			return f, "unsupported query term: " + term
		}
		v := m[2] + m[3]
		v = strings.ReplaceAll(v, `\"`, `"`)
		switch m[1] {
		case "identities.connection":
			f.Connection = v
		case "email":
			f.Email = v
		case "username":
			f.Username = v
		case "user_id":
			f.UserID = v
		default:
			return f, "unsupported query field: " + m[1]
		}
	}
	return f, ""
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:users"); !ok {
		return
	}
	p, ok := parsePage(w, r, false)
	if !ok {
		return
	}
	if se := r.URL.Query().Get("search_engine"); se != "" && se != "v3" {
		invalidQuery(w, "'search_engine' must be v3")
		return
	}
	f, bad := parseUserQuery(r.URL.Query().Get("q"))
	if bad != "" {
		mgmtError(w, http.StatusBadRequest, "invalid_query_string", "Query validation error: "+bad)
		return
	}
	if c := r.URL.Query().Get("connection"); c != "" {
		f.Connection = c
	}
	us, total, err := s.store.Q().Users(tenantOf(r), f, p.page*p.perPage, p.perPage)
	if err != nil {
		s.internal(w, err)
		return
	}
	items := make([]map[string]any, 0, len(us))
	for _, u := range us {
		items = append(items, project(r, userView(u, false)))
	}
	if p.includeTotals {
		writeJSON(w, http.StatusOK, map[string]any{"start": p.page * p.perPage, "limit": p.perPage, "length": len(items), "total": total, "users": items})
		return
	}
	writeJSON(w, http.StatusOK, items)
}

func inexistentUser(w http.ResponseWriter) {
	mgmtError(w, http.StatusNotFound, "inexistent_user", "The user does not exist.")
}

// getUser answers a user; identities[] carry the identity-provider tokens
// only for a token with read:user_idp_tokens.
func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	c, ok := s.authorize(w, r, "read:users")
	if !ok {
		return
	}
	u, err := s.store.Q().User(tenantOf(r), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		inexistentUser(w)
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, project(r, userView(u, hasAnyScope(c, "read:user_idp_tokens"))))
}

var patchUserFields = []string{"blocked", "email_verified", "email", "phone_number", "phone_verified", "user_metadata", "app_metadata",
	"given_name", "family_name", "name", "nickname", "picture", "verify_email", "verify_phone_number", "password", "verify_password",
	"connection", "client_id", "username"}

func (s *Server) patchUser(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "update:users"); !ok {
		return
	}
	body, ok := readFields(w, r, patchUserFields)
	if !ok {
		return
	}
	_, hasPW := body["password"]
	_, hasEmail := body["email"]
	_, hasUsername := body["username"]
	if hasPW && hasEmail {
		mgmtError(w, http.StatusBadRequest, "invalid_body", "Cannot update password and email simultaneously")
		return
	}
	for _, k := range []string{"password", "email", "username", "connection", "name", "nickname", "picture", "given_name", "family_name", "client_id"} {
		if v, ok := body[k]; ok && !isString(v) {
			invalidBody(w, "'Expected type string but found type "+typeName(v)+"' on property "+k)
			return
		}
	}
	for _, k := range []string{"blocked", "email_verified", "verify_email", "verify_password"} {
		if v, ok := body[k]; ok && !isBool(v) {
			invalidBody(w, "'Expected type boolean but found type "+typeName(v)+"' on property "+k)
			return
		}
	}
	if (hasPW || hasEmail || hasUsername) && strOf(body, "connection") == "" {
		invalidBody(w, "'connection is required when updating password, email or username'")
		return
	}
	domain := tenantOf(r)
	legacy := false
	if hasPW || hasEmail {
		// A user who lives in a legacy store changes there first, through
		// the connection's scripts; the platform keeps no password for them.
		if u, err := s.store.Q().User(domain, r.PathValue("id")); err == nil && u.Connection == strOf(body, "connection") {
			if c, err := s.store.Q().ConnectionByName(domain, u.Connection); err == nil && legacyOwned(c) {
				legacy = true
				if msg, ok := s.legacyUserChange(r, c, u, body); !ok {
					mgmtError(w, http.StatusBadRequest, "invalid_body", msg)
					return
				}
			}
		}
	}
	var (
		out       store.User
		status    int
		code, msg string
	)
	err := s.store.Tx(func(q store.Q) error {
		u, err := q.User(domain, r.PathValue("id"))
		if errors.Is(err, store.ErrNotFound) {
			status, code, msg = http.StatusNotFound, "inexistent_user", "The user does not exist."
			return nil
		}
		if err != nil {
			return err
		}
		if cn := strOf(body, "connection"); cn != "" && cn != u.Connection {
			status, code, msg = http.StatusBadRequest, "invalid_body", "The user does not belong to connection "+cn
			return nil
		}
		c, err := q.ConnectionByName(domain, u.Connection)
		if err != nil {
			return err
		}
		now := s.now()
		if hasPW {
			pw := strOf(body, "password")
			if rule := passwordPolicy(c).Check(pw); rule != "" {
				status, code, msg = http.StatusBadRequest, "invalid_body", "PasswordStrengthError: Password is too weak"
				return nil
			}
			if !legacy {
				u.PasswordHash = password.Hash(pw)
			}
			u.Doc["last_password_reset"] = timestamp(now)
		}
		if hasEmail {
			email := strOf(body, "email")
			if connectionValidation(c) {
				email = strings.ToLower(email)
			}
			if !emailRE.MatchString(email) {
				status, code, msg = http.StatusBadRequest, "invalid_body", payloadError("'Object didn't pass validation for format email: "+email+"' on property email")
				return nil
			}
			if !strings.EqualFold(email, u.Email) {
				_, n, err := q.Users(domain, store.UserFilter{Connection: u.Connection, Email: email}, 0, 1)
				if err != nil {
					return err
				}
				if n > 0 {
					status, code, msg = http.StatusConflict, "", "The specified new email already exists"
					return nil
				}
			}
			u.Email = email
			u.Doc["email"] = email
			if _, ok := body["email_verified"]; !ok {
				u.Doc["email_verified"] = false
			}
		}
		if hasUsername {
			un := strOf(body, "username")
			if connectionValidation(c) {
				un = strings.ToLower(un)
			}
			u.Username = un
			u.Doc["username"] = un
		}
		for _, k := range []string{"blocked", "email_verified", "name", "nickname", "picture", "given_name", "family_name"} {
			if v, ok := body[k]; ok {
				u.Doc[k] = v
			}
		}
		for _, k := range []string{"user_metadata", "app_metadata"} {
			patch, ok := body[k].(map[string]any)
			if !ok {
				continue
			}
			cur, _ := u.Doc[k].(map[string]any)
			if cur == nil {
				cur = map[string]any{}
			}
			for mk, mv := range patch {
				if mv == nil {
					delete(cur, mk)
				} else {
					cur[mk] = mv
				}
			}
			u.Doc[k] = cur
		}
		u.Doc["updated_at"] = timestamp(now)
		out = u
		return q.PutUser(u)
	})
	if err != nil {
		s.internal(w, err)
		return
	}
	if status != 0 {
		mgmtError(w, status, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, userView(out, false))
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "delete:users"); !ok {
		return
	}
	if u, err := s.store.Q().User(tenantOf(r), r.PathValue("id")); err == nil {
		if c, err := s.store.Q().ConnectionByName(u.Domain, u.Connection); err == nil && legacyOwned(c) {
			if _, err := s.runAction(r.Context(), c, "delete", strings.TrimPrefix(u.UserID, "auth0|")); err != nil && !errors.Is(err, errNoScript) {
				mgmtError(w, http.StatusInternalServerError, "", "The delete script failed")
				return
			}
		}
	}
	if err := s.store.Q().DeleteUser(tenantOf(r), r.PathValue("id")); err != nil {
		s.internal(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) usersByEmail(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "read:users"); !ok {
		return
	}
	email := r.URL.Query().Get("email")
	if email == "" {
		invalidQuery(w, "'Missing required property: email'")
		return
	}
	us, _, err := s.store.Q().Users(tenantOf(r), store.UserFilter{Email: email}, 0, 1000)
	if err != nil {
		s.internal(w, err)
		return
	}
	items := make([]map[string]any, 0, len(us))
	for _, u := range us {
		items = append(items, project(r, userView(u, false)))
	}
	writeJSON(w, http.StatusOK, items)
}

var ticketFields = []string{"user_id", "connection_id", "email", "result_url", "client_id", "organization_id", "ttl_sec", "mark_email_as_verified", "includeEmailInRedirect"}

// passwordChangeTicket creates a reset ticket (flow 4 of the design). Like
// an emailed link it is single use, and only the newest one for a user works.
func (s *Server) passwordChangeTicket(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, "create:user_tickets"); !ok {
		return
	}
	body, ok := readFields(w, r, ticketFields)
	if !ok {
		return
	}
	if v, ok := body["ttl_sec"]; ok && (!isInteger(v) || toInt(v) < 0) {
		invalidBody(w, "'Expected a non-negative integer' on property ttl_sec")
		return
	}
	userID, connID, email := strOf(body, "user_id"), strOf(body, "connection_id"), strOf(body, "email")
	if userID == "" && (connID == "" || email == "") {
		invalidBody(w, "'Either user_id, or connection_id and email, are required'")
		return
	}
	domain := tenantOf(r)
	q := s.store.Q()
	var (
		u   store.User
		err error
	)
	if userID != "" {
		u, err = q.User(domain, userID)
	} else {
		var c store.Connection
		if c, err = q.Connection(domain, connID); err == nil {
			u, err = q.UserByLogin(domain, c.Name, email)
		} else if errors.Is(err, store.ErrNotFound) {
			mgmtError(w, http.StatusNotFound, "inexistent_connection", "The connection does not exist")
			return
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		inexistentUser(w)
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	c, err := q.ConnectionByName(domain, u.Connection)
	if err != nil {
		s.internal(w, err)
		return
	}
	ttl := defaultLinkLifetime
	if n := toInt(body["ttl_sec"]); n > 0 {
		ttl = time.Duration(n) * time.Second
	}
	t := newTicket(c, u, u.Email, nil, s.now(), ttl)
	t.ResultURL = strOf(body, "result_url")
	t.IncludeEmail = boolOf(body, "includeEmailInRedirect")
	t.MarkEmailVerified = boolOf(body, "mark_email_as_verified")
	if err := s.store.Tx(func(q store.Q) error { return q.CreateTicket(t) }); err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"ticket": resetURL(publicBase(r), t.ID)})
}

// legacyUserChange runs change_password or change_email for a user of a
// legacy-owned connection. It returns the 400 message when it fails.
func (s *Server) legacyUserChange(r *http.Request, c store.Connection, u store.User, body map[string]any) (string, bool) {
	if pw, ok := body["password"].(string); ok {
		if rule := passwordPolicy(c).Check(pw); rule != "" {
			return "PasswordStrengthError: Password is too weak", false
		}
		if err := s.legacyChangePassword(r.Context(), c, u.Email, pw); err != nil {
			return "The change_password script failed", false
		}
	}
	if email, ok := body["email"].(string); ok {
		verified, _ := body["email_verified"].(bool)
		res, err := s.runAction(r.Context(), c, "change_email", u.Email, email, verified)
		if ok, _ := res.(bool); err != nil || !ok {
			return "The change_email script failed", false
		}
	}
	return "", true
}
