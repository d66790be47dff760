package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/tenantops/identity-operator/test/emulator/internal/password"
	"github.com/tenantops/identity-operator/test/emulator/internal/scripts"
	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// loginError is a failed login as the token endpoint answers it.
type loginError struct {
	status      int
	code, descr string
}

var errWrongCredentials = &loginError{http.StatusForbidden, "invalid_grant", "Wrong email or password."}

// maxLoginFailures is when brute-force protection blocks a login.
const maxLoginFailures = 10

// customization reports whether a connection runs custom database scripts.
func customization(c store.Connection) bool { return boolOf(c.Options, "enabledDatabaseCustomization") }

func importMode(c store.Connection) bool { return boolOf(c.Options, "import_mode") }

func script(c store.Connection, name string) string {
	cs, _ := c.Options["customScripts"].(map[string]any)
	s, _ := cs[name].(string)
	return s
}

// authenticate checks a database login. A user in the platform's store is
// served by the store. Otherwise, with custom database scripts, the login
// script decides; with import_mode on, a successful login creates the user
// in the store (lazy migration), so the next login does not run the script.
func (s *Server) authenticate(ctx context.Context, c store.Connection, login, pw string) (store.User, *loginError) {
	key := c.Domain + "|" + c.Name + "|" + strings.ToLower(login)
	protect := true
	if v, ok := c.Options["brute_force_protection"].(bool); ok && !v {
		protect = false
	}
	failures := s.failureCounter(key)
	if protect && failures.Load() >= maxLoginFailures {
		return store.User{}, &loginError{http.StatusTooManyRequests, "too_many_attempts", "Your account has been blocked after multiple consecutive login attempts."}
	}
	u, lerr := s.checkLogin(ctx, c, login, pw)
	if lerr == errWrongCredentials {
		failures.Add(1)
	} else if lerr == nil {
		failures.Store(0)
	}
	return u, lerr
}

func (s *Server) failureCounter(key string) *atomic.Int32 {
	v, _ := s.loginFails.LoadOrStore(key, new(atomic.Int32))
	return v.(*atomic.Int32)
}

func (s *Server) checkLogin(ctx context.Context, c store.Connection, login, pw string) (store.User, *loginError) {
	if legacyOwned(c) {
		return s.legacyLogin(ctx, c, login, pw)
	}
	q := s.store.Q()
	u, err := q.UserByLogin(c.Domain, c.Name, login)
	if err == nil {
		if u.PasswordHash == "" || !password.Check(u.PasswordHash, pw) {
			return store.User{}, errWrongCredentials
		}
		if b, _ := u.Doc["blocked"].(bool); b {
			return store.User{}, &loginError{http.StatusUnauthorized, "unauthorized", "user is blocked"}
		}
		return u, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, &loginError{http.StatusInternalServerError, "server_error", "Internal error"}
	}
	src := script(c, "login")
	if !customization(c) || src == "" {
		return store.User{}, errWrongCredentials
	}
	res, err := s.scripts.Run(ctx, "login", src, s.plainConfiguration(c), login, pw)
	profile, _ := res.(map[string]any)
	if lerr := scriptLoginError(err); lerr != nil {
		return store.User{}, lerr
	}
	if profile == nil {
		return store.User{}, errWrongCredentials
	}
	email, _ := profile["email"].(string)
	username, _ := profile["username"].(string)
	var (
		created store.User
		msg     string
	)
	err = s.store.Tx(func(q store.Q) error {
		var err error
		created, msg, err = newDatabaseUser(q, c, userSpec{ID: profileID(profile), Email: email, Username: username, Password: pw, Profile: profile}, s.now())
		if err != nil || msg != "" || !importMode(c) {
			return err
		}
		if err := q.CreateUser(created); errors.Is(err, store.ErrConflict) {
			msg = "a user with the id returned by the login script already exists"
			return nil
		} else {
			return err
		}
	})
	if err != nil {
		s.log.Error("login: migration failed", "tenant", c.Domain, "connection", c.Name, "err", err)
		return store.User{}, &loginError{http.StatusInternalServerError, "server_error", "Internal error"}
	}
	if msg != "" {
		return store.User{}, &loginError{http.StatusBadRequest, "invalid_request", "The profile returned by the login script is invalid: " + msg}
	}
	return created, nil
}

// scriptLoginError maps a script's failure to the token endpoint's answer.
func scriptLoginError(err error) *loginError {
	if err == nil {
		return nil
	}
	var wrong *scripts.WrongCredentialsError
	var val *scripts.ValidationError
	switch {
	case errors.As(err, &wrong):
		return errWrongCredentials
	case errors.As(err, &val):
		return &loginError{http.StatusBadRequest, "invalid_request", val.Message}
	case errors.Is(err, scripts.ErrTimeout):
		return &loginError{http.StatusInternalServerError, "server_error", "The custom database script timed out"}
	default:
		// The script's own message may carry configuration values; say only
		// that it failed.
		return &loginError{http.StatusInternalServerError, "server_error", "The custom database script failed"}
	}
}

// findForReset finds who a reset for email on c is about: a user in the
// store, or (custom database with import mode) a profile from the get_user
// script for a user not migrated yet. ok=false when nobody matches.
func (s *Server) findForReset(ctx context.Context, c store.Connection, email string) (u store.User, pending map[string]any, ok bool, err error) {
	u, err = s.store.Q().UserByLogin(c.Domain, c.Name, email)
	if err == nil {
		return u, nil, true, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return u, nil, false, err
	}
	src := script(c, "get_user")
	if !customization(c) || src == "" {
		return u, nil, false, nil
	}
	res, err := s.scripts.Run(ctx, "get_user", src, s.plainConfiguration(c), email)
	if err != nil {
		// A failing get_user is answered like an unknown email: nobody may
		// probe for accounts, and the failure is logged without details.
		s.log.Warn("get_user script failed", "tenant", c.Domain, "connection", c.Name)
		return u, nil, false, nil
	}
	p, _ := res.(map[string]any)
	return u, p, p != nil, nil
}

// legacyOwned reports whether a connection's users live in the legacy store
// (custom database without import mode): every action runs its script, and
// the platform keeps only a profile copy, without password.
func legacyOwned(c store.Connection) bool { return customization(c) && !importMode(c) }

// errNoScript means the connection lacks the script an action needs.
var errNoScript = errors.New("the connection has no script for this action")

// runAction runs one of the connection's scripts.
func (s *Server) runAction(ctx context.Context, c store.Connection, name string, args ...any) (any, error) {
	src := script(c, name)
	if src == "" {
		return nil, errNoScript
	}
	return s.scripts.Run(ctx, name, src, s.plainConfiguration(c), args...)
}

// legacyLogin asks the login script on every login and refreshes the
// platform's profile copy of the user.
func (s *Server) legacyLogin(ctx context.Context, c store.Connection, login, pw string) (store.User, *loginError) {
	res, err := s.runAction(ctx, c, "login", login, pw)
	if errors.Is(err, errNoScript) {
		return store.User{}, errWrongCredentials
	}
	if lerr := scriptLoginError(err); lerr != nil {
		return store.User{}, lerr
	}
	profile, _ := res.(map[string]any)
	if profile == nil {
		return store.User{}, errWrongCredentials
	}
	var (
		u   store.User
		msg string
	)
	err = s.store.Tx(func(q store.Q) error {
		old, err := q.User(c.Domain, "auth0|"+profileID(profile))
		if errors.Is(err, store.ErrNotFound) {
			fresh, m, err := newDatabaseUser(q, c, userSpec{ID: profileID(profile), Email: strOf(profile, "email"), Username: strOf(profile, "username"), Profile: profile}, s.now())
			if err != nil || m != "" {
				msg = m
				return err
			}
			u = fresh
			return q.CreateUser(fresh)
		}
		if err != nil {
			return err
		}
		// Refresh the copy from what the legacy store answered.
		email, username := strOf(profile, "email"), strOf(profile, "username")
		if connectionValidation(c) {
			email, username = strings.ToLower(email), strings.ToLower(username)
		}
		old.Email, old.Username = email, username
		old.Doc["email"] = email
		if username != "" {
			old.Doc["username"] = username
		}
		for _, k := range []string{"name", "nickname", "picture", "given_name", "family_name", "email_verified", "user_metadata", "app_metadata"} {
			if v, ok := profile[k]; ok && v != nil {
				old.Doc[k] = v
			}
		}
		old.Doc["updated_at"] = timestamp(s.now())
		u = old
		return q.PutUser(old)
	})
	if err != nil {
		s.log.Error("login: profile copy failed", "tenant", c.Domain, "connection", c.Name, "err", err)
		return store.User{}, &loginError{http.StatusInternalServerError, "server_error", "Internal error"}
	}
	if msg != "" {
		return store.User{}, &loginError{http.StatusBadRequest, "invalid_request", "The profile returned by the login script is invalid: " + msg}
	}
	return u, nil
}

// legacyChangePassword runs the change_password script, which answers
// callback(null, true) when the legacy store took the new password.
func (s *Server) legacyChangePassword(ctx context.Context, c store.Connection, email, pw string) error {
	res, err := s.runAction(ctx, c, "change_password", email, pw)
	if err != nil {
		return err
	}
	if ok, _ := res.(bool); !ok {
		return errors.New("the change_password script did not change the password")
	}
	return nil
}
