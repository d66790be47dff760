package server

import (
	"errors"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// Universal Login for database users, authorization code flow
// (https://auth0.com/docs/api/authentication/authorization-code-flow/authorize-application):
//
//	GET  /authorize   checks the client and redirect_uri, then sends the
//	                  browser to the login page, or, with a session and
//	                  without prompt=login, straight on to the actions
//	GET  /u/login     the login page (login_hint pre-filled)
//	POST /u/login     the form: the database login, then the post-login
//	                  actions (postlogin.go)
//	GET  /continue    where a redirect by an action comes back (?state=)
//
// A finished login sets the session cookie and redirects to redirect_uri
// with code and state; POST /oauth/token exchanges the code. Login
// transactions, sessions and codes live in memory: a restart forgets them.

const (
	// sessionCookie is the platform's session cookie name.
	sessionCookie = "auth0"
	// loginTxnLifetime bounds a login from /authorize to its code,
	// including the time a user spends on a page an action sent them to.
	loginTxnLifetime = time.Hour
	// sessionLifetime is how long a login session skips the login page.
	sessionLifetime = 72 * time.Hour
	// codeLifetime is how long an authorization code may be exchanged.
	codeLifetime = 10 * time.Minute
)

// loginTxn is a login on its way from /authorize to a code.
type loginTxn struct {
	ID, Domain string
	// The /authorize request.
	ClientID, RedirectURI, State, Scope, Audience, Nonce, Prompt, LoginHint string
	Query                                                                   map[string]string
	IP, UserAgent                                                           string
	// ConnectionName is the database the login page authenticates with,
	// then the authenticated user's.
	ConnectionName string
	Expires        time.Time

	// Set once the user is authenticated.
	UserID   string
	AuthTime time.Time
	// The post-login actions: read once, run from Next on; Paused means the
	// action at Next redirected and /continue resumes it.
	ActionsRead            bool
	Actions                []boundVersion
	Next                   int
	Paused                 bool
	IDClaims, AccessClaims map[string]any
}

// loginSession is what the session cookie stands for.
type loginSession struct {
	Domain, UserID, Connection string
	AuthTime, Expires          time.Time
}

// authCode is an issued authorization code.
type authCode struct {
	Domain, ClientID, RedirectURI, UserID, Scope, Audience, Nonce string
	AuthTime, Expires                                             time.Time
	IDClaims, AccessClaims                                        map[string]any
}

var loginTmpl = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Log in | {{.Tenant}}</title></head>
<body><h1>Log in</h1>
<p>Log in to {{.Tenant}} to continue to {{.Client}}.</p>
{{if .Error}}<p id="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/u/login">
<input type="hidden" name="state" value="{{.State}}">
<label>Email address or username <input type="text" name="username" value="{{.Username}}" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit" name="action" value="default">Continue</button>
</form>
</body></html>
`))

type loginPage struct{ Tenant, Client, State, Username, Error string }

func writeLoginPage(w http.ResponseWriter, status int, p loginPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = loginTmpl.Execute(w, p)
}

// withQuery is rawURL with params added to its query (its fragment, such
// as a ticket link's trailing "#", dropped).
func withQuery(rawURL string, params map[string]string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	q := u.Query()
	for k, v := range params {
		if v != "" {
			q.Set(k, v)
		}
	}
	u.RawQuery, u.Fragment, u.RawFragment = q.Encode(), "", ""
	return u.String()
}

// redirectError sends the browser back to the application with an OAuth
// error, as the platform does once redirect_uri is known to be allowed.
func redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state, code, description string) {
	http.Redirect(w, r, withQuery(redirectURI, map[string]string{"error": code, "error_description": description, "state": state}), http.StatusFound)
}

func errorPage(w http.ResponseWriter, status int, msg string) {
	writePage(w, status, htmlPage{Title: "Something went wrong", Message: msg})
}

// authorizeEndpoint is GET /authorize.
func (s *Server) authorizeEndpoint(w http.ResponseWriter, r *http.Request) {
	domain, p := tenantOf(r), r.URL.Query()
	client, err := s.store.Q().Client(p.Get("client_id"))
	if err != nil || client.Domain != domain {
		errorPage(w, http.StatusBadRequest, "invalid_request: Unknown client: "+p.Get("client_id"))
		return
	}
	redirectURI := p.Get("redirect_uri")
	callbacks, _ := client.Doc["callbacks"].([]any)
	if redirectURI == "" || !slices.Contains(callbacks, any(redirectURI)) {
		errorPage(w, http.StatusBadRequest, "Callback URL mismatch. "+redirectURI+" is not in the list of allowed callback URLs.")
		return
	}
	state := p.Get("state")
	if rt := p.Get("response_type"); rt != "code" {
		redirectError(w, r, redirectURI, state, "unsupported_response_type", "Unsupported response type: "+rt)
		return
	}
	conn, msg := s.loginConnection(domain, client, p.Get("connection"))
	if msg != "" {
		redirectError(w, r, redirectURI, state, "invalid_request", msg)
		return
	}
	query := map[string]string{}
	for k := range p {
		query[k] = p.Get(k)
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	txn := &loginTxn{ID: randomAlnum(32), Domain: domain, ClientID: client.ClientID, RedirectURI: redirectURI, State: state,
		Scope: p.Get("scope"), Audience: p.Get("audience"), Nonce: p.Get("nonce"), Prompt: p.Get("prompt"), LoginHint: p.Get("login_hint"),
		Query: query, IP: ip, UserAgent: r.UserAgent(), ConnectionName: conn.Name, Expires: s.now().Add(loginTxnLifetime),
		IDClaims: map[string]any{}, AccessClaims: map[string]any{}}
	if txn.Prompt != "login" {
		if sess, ok := s.session(r, domain); ok {
			txn.UserID, txn.ConnectionName, txn.AuthTime = sess.UserID, sess.Connection, sess.AuthTime
			s.runPostLogin(w, r, txn)
			return
		}
	}
	if txn.Prompt == "none" {
		redirectError(w, r, redirectURI, state, "login_required", "Login required")
		return
	}
	s.sweepLogins()
	s.logins.Store(txn.ID, txn)
	http.Redirect(w, r, "/u/login?state="+url.QueryEscape(txn.ID), http.StatusFound)
}

// sweepLogins forgets expired login transactions, sessions and codes, at
// most once a minute, so that a long-running emulator does not grow.
func (s *Server) sweepLogins() {
	now := s.now()
	last := s.lastSweep.Load()
	if now.UnixNano()-last < int64(time.Minute) || !s.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	s.logins.Range(func(k, v any) bool {
		if !now.Before(v.(*loginTxn).Expires) {
			s.logins.Delete(k)
		}
		return true
	})
	s.sessions.Range(func(k, v any) bool {
		if !now.Before(v.(*loginSession).Expires) {
			s.sessions.Delete(k)
		}
		return true
	})
	s.codes.Range(func(k, v any) bool {
		if !now.Before(v.(*authCode).Expires) {
			s.codes.Delete(k)
		}
		return true
	})
}

// loginConnection is the database a login uses: the one the request names,
// else the tenant's default_directory, else the first database enabled for
// the client, else the first database. It answers a message when there is
// none.
func (s *Server) loginConnection(domain string, client store.Client, name string) (store.Connection, string) {
	q := s.store.Q()
	if name != "" {
		c, err := q.ConnectionByName(domain, name)
		if err != nil || c.Strategy != "auth0" {
			return c, "the connection " + name + " is not a database connection of this tenant"
		}
		return c, ""
	}
	if t, err := q.Tenant(domain); err == nil {
		if d := strOf(t.Settings, "default_directory"); d != "" {
			if c, err := q.ConnectionByName(domain, d); err == nil && c.Strategy == "auth0" {
				return c, ""
			}
		}
	}
	cs, _, err := q.Connections(domain, store.ConnectionFilter{Strategies: []string{"auth0"}}, 0, -1)
	if err != nil || len(cs) == 0 {
		return store.Connection{}, "no database connection is available for this login"
	}
	for _, c := range cs {
		if slices.Contains(c.EnabledClients, client.ClientID) {
			return c, ""
		}
	}
	return cs[0], ""
}

// pendingLogin returns a login waiting on the login page (take removes it,
// so that one form post carries it on).
func (s *Server) pendingLogin(domain, id string, take bool) (*loginTxn, bool) {
	var (
		v  any
		ok bool
	)
	if take {
		v, ok = s.logins.LoadAndDelete(id)
	} else {
		v, ok = s.logins.Load(id)
	}
	if !ok {
		return nil, false
	}
	txn := v.(*loginTxn)
	if txn.Domain != domain || !s.now().Before(txn.Expires) {
		if !take {
			s.logins.Delete(id)
		}
		return nil, false
	}
	return txn, true
}

const loginExpired = "This login has expired or is not valid. Start again from the application."

// loginForm is GET /u/login: the page, login_hint pre-filled.
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	txn, ok := s.pendingLogin(tenantOf(r), r.URL.Query().Get("state"), false)
	if !ok || txn.UserID != "" {
		errorPage(w, http.StatusBadRequest, loginExpired)
		return
	}
	writeLoginPage(w, http.StatusOK, s.loginPageFor(txn, txn.LoginHint, ""))
}

func (s *Server) loginPageFor(txn *loginTxn, username, errMsg string) loginPage {
	name := txn.ClientID
	if c, err := s.store.Q().Client(txn.ClientID); err == nil && c.Name != "" {
		name = c.Name
	}
	return loginPage{Tenant: txn.Domain, Client: name, State: txn.ID, Username: username, Error: errMsg}
}

// loginSubmit is POST /u/login: the database login (store, custom
// database scripts, brute-force protection). A failure shows the page
// again with the error and runs no action.
func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		errorPage(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	domain := tenantOf(r)
	txn, ok := s.pendingLogin(domain, r.PostForm.Get("state"), true)
	if !ok || txn.UserID != "" {
		if ok {
			s.logins.Store(txn.ID, txn) // a login past its page: leave it to /continue
		}
		errorPage(w, http.StatusBadRequest, loginExpired)
		return
	}
	username, pw := r.PostForm.Get("username"), r.PostForm.Get("password")
	c, err := s.store.Q().ConnectionByName(domain, txn.ConnectionName)
	if err != nil {
		errorPage(w, http.StatusBadRequest, loginExpired)
		return
	}
	u, lerr := s.authenticate(r.Context(), c, username, pw)
	if lerr != nil {
		s.logins.Store(txn.ID, txn)
		status := lerr.status
		if status == http.StatusForbidden {
			status = http.StatusBadRequest
		}
		writeLoginPage(w, status, s.loginPageFor(txn, username, lerr.descr))
		return
	}
	s.recordLogin(domain, u.UserID)
	txn.UserID, txn.ConnectionName, txn.AuthTime = u.UserID, c.Name, s.now()
	s.runPostLogin(w, r, txn)
}

// continueLogin is GET /continue?state=: back from a page an action sent
// the user to.
func (s *Server) continueLogin(w http.ResponseWriter, r *http.Request) {
	txn, ok := s.pendingLogin(tenantOf(r), r.URL.Query().Get("state"), true)
	if !ok || !txn.Paused {
		if ok {
			s.logins.Store(txn.ID, txn)
		}
		errorPage(w, http.StatusBadRequest, loginExpired)
		return
	}
	s.runPostLogin(w, r, txn)
}

// recordLogin counts a successful login on the user.
func (s *Server) recordLogin(domain, userID string) {
	_ = s.store.Tx(func(q store.Q) error {
		u, err := q.User(domain, userID)
		if err != nil {
			return nil
		}
		u.Doc["last_login"] = timestamp(s.now())
		u.Doc["logins_count"] = toInt(u.Doc["logins_count"]) + 1
		return q.PutUser(u)
	})
}

// completeLogin ends a login that every action let through: a session, a
// code, and the browser back to the application.
func (s *Server) completeLogin(w http.ResponseWriter, r *http.Request, txn *loginTxn) {
	now := s.now()
	sid := randomAlnum(32)
	s.sessions.Store(sid, &loginSession{Domain: txn.Domain, UserID: txn.UserID, Connection: txn.ConnectionName, AuthTime: txn.AuthTime, Expires: now.Add(sessionLifetime)})
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode,
		MaxAge: int(sessionLifetime / time.Second)})
	code := randomAlnum(32)
	s.codes.Store(code, &authCode{Domain: txn.Domain, ClientID: txn.ClientID, RedirectURI: txn.RedirectURI, UserID: txn.UserID,
		Scope: txn.Scope, Audience: txn.Audience, Nonce: txn.Nonce, AuthTime: txn.AuthTime, Expires: now.Add(codeLifetime),
		IDClaims: txn.IDClaims, AccessClaims: txn.AccessClaims})
	http.Redirect(w, r, withQuery(txn.RedirectURI, map[string]string{"code": code, "state": txn.State}), http.StatusFound)
}

// session is the request's login session on domain, if it has a live one
// for a user who still exists.
func (s *Server) session(r *http.Request, domain string) (*loginSession, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false
	}
	v, ok := s.sessions.Load(ck.Value)
	if !ok {
		return nil, false
	}
	sess := v.(*loginSession)
	if sess.Domain != domain || !s.now().Before(sess.Expires) {
		return nil, false
	}
	if _, err := s.store.Q().User(domain, sess.UserID); errors.Is(err, store.ErrNotFound) {
		s.sessions.Delete(ck.Value)
		return nil, false
	}
	return sess, true
}

// redeemCode takes an authorization code (once) for a client.
func (s *Server) redeemCode(domain, clientID, code string) (*authCode, bool) {
	v, ok := s.codes.LoadAndDelete(code)
	if !ok {
		return nil, false
	}
	c := v.(*authCode)
	return c, c.Domain == domain && c.ClientID == clientID && s.now().Before(c.Expires)
}
