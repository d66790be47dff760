package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tenantops/identity-operator/test/emulator/internal/password"
	"github.com/tenantops/identity-operator/test/emulator/internal/scripts"
	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// changePasswordAnswer is the platform's answer whether or not the email
// exists, so nobody can probe for accounts.
const changePasswordAnswer = "We've just sent you an email to reset your password."

// dbConnection resolves client_id and connection of a /dbconnections call,
// answering the error itself when it returns ok=false.
func (s *Server) dbConnection(w http.ResponseWriter, domain string, p map[string]string) (store.Connection, bool) {
	cl, err := s.store.Q().Client(p["client_id"])
	if p["client_id"] == "" || err != nil || cl.Domain != domain {
		dbError(w, http.StatusBadRequest, "BadRequestError", "invalid_request", "Unknown client: "+p["client_id"])
		return store.Connection{}, false
	}
	c, err := s.store.Q().ConnectionByName(domain, p["connection"])
	if p["connection"] == "" || err != nil || c.Strategy != "auth0" {
		dbError(w, http.StatusBadRequest, "BadRequestError", "invalid_request", "Unknown or invalid database connection: "+p["connection"])
		return store.Connection{}, false
	}
	return c, true
}

// changePassword starts a password change by email. With the old flow
// (flag change_pwd_flow_v1 true) the request may carry the new password,
// which the emailed confirmation link applies; with the new flow a password
// in the request is refused and the email carries a single-use reset link.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	domain := tenantOf(r)
	p, err := readParams(r)
	if err != nil {
		dbError(w, http.StatusBadRequest, "BadRequestError", "invalid_request", "The request body could not be parsed")
		return
	}
	email := strings.TrimSpace(p["email"])
	if !s.withinEndpointLimit(w, r, epChangePassword, clientIP(r)+"|"+email) {
		return
	}
	c, ok := s.dbConnection(w, domain, p)
	if !ok {
		return
	}
	if email == "" {
		dbError(w, http.StatusBadRequest, "BadRequestError", "invalid_request", "Missing required parameter: email")
		return
	}
	t, err := s.store.Q().Tenant(domain)
	if err != nil {
		s.internal(w, err)
		return
	}
	oldFlow := boolOf(flagsOf(t.Settings), "change_pwd_flow_v1")
	_, withPassword := p["password"]
	if withPassword && !oldFlow {
		dbError(w, http.StatusBadRequest, "BadRequestError", "invalid_request", "Password is not allowed")
		return
	}
	if withPassword {
		if rule := passwordPolicy(c).Check(p["password"]); rule != "" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"name": "PasswordStrengthError", "code": "invalid_password",
				"description": "Password is too weak: " + rule, "policy": firstNonEmpty(strOf(c.Options, "passwordPolicy"), "good"), "statusCode": 400})
			return
		}
	}
	u, pending, found, err := s.findForReset(r.Context(), c, email)
	if err != nil {
		s.internal(w, err)
		return
	}
	if found {
		q := s.store.Q()
		ttl, resultURL := resetLifetime(q, domain)
		tk := newTicket(c, u, strings.ToLower(email), pending, s.now(), ttl)
		tk.ResultURL = resultURL
		name, link := "reset_email", resetURL(publicBase(r), tk.ID)
		if withPassword {
			tk.Kind, tk.NewPasswordHash = "confirm", password.Hash(p["password"])
			if legacyOwned(c) {
				tk.NewPasswordSealed = s.box.Seal(p["password"])
			}
			name, link = "change_password", confirmURL(publicBase(r), tk.ID)
		}
		if err := s.store.Tx(func(q store.Q) error { return q.CreateTicket(tk) }); err != nil {
			s.internal(w, err)
			return
		}
		to := u.Email
		if to == "" {
			to = email
		}
		s.sendMail(domain, name, to, map[string]string{
			"url": link, "user.email": to, "email": to, "friendly_name": strOf(t.Settings, "friendly_name"),
			"tenant": domain, "connection.name": c.Name,
		})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(changePasswordAnswer))
}

// signup creates a database user.
func (s *Server) signup(w http.ResponseWriter, r *http.Request) {
	domain := tenantOf(r)
	p, err := readParams(r)
	if err != nil {
		dbError(w, http.StatusBadRequest, "BadRequestError", "invalid_request", "The request body could not be parsed")
		return
	}
	if !s.withinEndpointLimit(w, r, epSignup, clientIP(r)) {
		return
	}
	c, ok := s.dbConnection(w, domain, p)
	if !ok {
		return
	}
	if boolOf(c.Options, "disable_signup") {
		dbError(w, http.StatusBadRequest, "BadRequestError", "operation_not_allowed", "Public signup is disabled")
		return
	}
	if p["email"] == "" || p["password"] == "" {
		dbError(w, http.StatusBadRequest, "BadRequestError", "invalid_signup", "Invalid sign up: email and password are required")
		return
	}
	if rule := passwordPolicy(c).Check(p["password"]); rule != "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"name": "PasswordStrengthError", "code": "invalid_password",
			"description": "Password is too weak: " + rule, "policy": firstNonEmpty(strOf(c.Options, "passwordPolicy"), "good"), "statusCode": 400})
		return
	}
	if legacyOwned(c) {
		s.legacySignup(w, r, c, p)
		return
	}
	if customization(c) && importMode(c) {
		// A user still in the legacy store must not be created twice.
		if _, pending, found, _ := s.findForReset(r.Context(), c, p["email"]); found && pending != nil {
			dbError(w, http.StatusBadRequest, "BadRequestError", "user_exists", "The user already exists.")
			return
		}
	}
	profile := map[string]any{}
	for _, k := range []string{"name", "nickname", "picture", "given_name", "family_name"} {
		if p[k] != "" {
			profile[k] = p[k]
		}
	}
	var (
		u   store.User
		msg string
	)
	err = s.store.Tx(func(q store.Q) error {
		var err error
		u, msg, err = newDatabaseUser(q, c, userSpec{Email: p["email"], Username: p["username"], Password: p["password"], Profile: profile}, s.now())
		if err != nil || msg != "" {
			return err
		}
		return q.CreateUser(u)
	})
	switch {
	case err != nil:
		s.internal(w, err)
	case msg == "the user already exists" || msg == "the username is already taken":
		dbError(w, http.StatusBadRequest, "BadRequestError", "user_exists", "The user already exists.")
	case msg != "":
		dbError(w, http.StatusBadRequest, "BadRequestError", "invalid_signup", "Invalid sign up: "+msg)
	default:
		id := strings.TrimPrefix(u.UserID, "auth0|")
		writeJSON(w, http.StatusOK, map[string]any{"_id": id, "email": u.Email, "email_verified": false})
	}
}

// legacySignup creates the user in the legacy store with the create script:
// callback(null) on success, ValidationError('user_exists', ...) when taken.
func (s *Server) legacySignup(w http.ResponseWriter, r *http.Request, c store.Connection, p map[string]string) {
	user := map[string]any{"email": p["email"], "password": p["password"], "tenant": c.Domain, "client_id": p["client_id"], "connection": c.Name}
	if p["username"] != "" {
		user["username"] = p["username"]
	}
	_, err := s.runAction(r.Context(), c, "create", user)
	var val *scripts.ValidationError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]any{"_id": randomID(12), "email": p["email"], "email_verified": false})
	case errors.As(err, &val) && val.Code == "user_exists":
		dbError(w, http.StatusBadRequest, "BadRequestError", "user_exists", "The user already exists.")
	case errors.As(err, &val):
		dbError(w, http.StatusBadRequest, "BadRequestError", "invalid_signup", val.Message)
	default:
		dbError(w, http.StatusBadRequest, "BadRequestError", "invalid_signup", "Invalid sign up: the create script failed")
	}
}
