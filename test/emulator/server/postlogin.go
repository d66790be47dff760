package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tenantops/identity-operator/test/emulator/internal/scripts"
	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// Post-login Actions: once Universal Login has authenticated a user, the
// deployed versions of the actions bound to the post-login trigger run in
// binding order, in the goja sandbox, each with the event and api objects
// of post-login v3 (internal/scripts). An action may redirect the browser
// (the login pauses until /continue), deny the login, or throw (the login
// fails); custom claims and metadata it sets are kept.

// boundVersion is an action version a login runs: the bindings are read
// once, when the actions start, so a login paused by a redirect resumes
// with the versions it began with.
type boundVersion struct{ ActionID, VersionID, Name string }

// actionHTTP is the client behind actions' fetch: a request to one of the
// emulator's tenant domains comes back to this server over TLS (trusting
// its CA, whatever port the URL names), as a call to the tenant's public
// endpoint would on the platform; any other goes through the scripts'
// client (loopback only unless Config.ScriptHTTPClient says otherwise).
func (s *Server) actionHTTPClient() *http.Client {
	base := http.DefaultTransport
	if s.cfg.ScriptHTTPClient != nil {
		if s.cfg.ScriptHTTPClient.Transport != nil {
			base = s.cfg.ScriptHTTPClient.Transport
		}
	} else {
		base = scripts.LoopbackClient().Transport
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.ca.CACertPEM())
	d := &net.Dialer{Timeout: 5 * time.Second}
	self := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, s.Addr())
		},
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
	}
	return &http.Client{Transport: tenantRouter{s: s, self: self, other: base},
		// fetch follows redirects, as Node's does.
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) >= 20 {
				return errors.New("too many redirects")
			}
			return nil
		}}
}

// tenantRouter sends requests for tenant domains to self, the rest to
// other.
type tenantRouter struct {
	s           *Server
	self, other http.RoundTripper
}

func (t tenantRouter) RoundTrip(r *http.Request) (*http.Response, error) {
	if !t.s.hasTenant(strings.ToLower(r.URL.Hostname())) || r.URL.Scheme != "https" {
		return t.other.RoundTrip(r)
	}
	// A URL without port means the port the tenant is served on: the
	// links the tenant makes for this request (a ticket) must carry it.
	if _, port, err := net.SplitHostPort(t.s.Addr()); err == nil && r.URL.Port() == "" && port != "443" {
		r = r.Clone(r.Context())
		r.Host = r.URL.Hostname() + ":" + port
	}
	return t.self.RoundTrip(r)
}

// postLoginVersions reads the post-login trigger's bindings: the deployed
// version of each bound action, in order.
func (s *Server) postLoginVersions(domain string) ([]boundVersion, error) {
	q := s.store.Q()
	bs, err := q.Bindings(domain, "post-login")
	if err != nil {
		return nil, err
	}
	out := make([]boundVersion, 0, len(bs))
	for _, b := range bs {
		a, err := q.Action(domain, b.ActionID)
		if err != nil {
			return nil, err
		}
		if a.DeployedVersionID != "" {
			out = append(out, boundVersion{ActionID: a.ID, VersionID: a.DeployedVersionID, Name: a.Name})
		}
	}
	return out, nil
}

// postLoginEvent is the event of post-login v3 for one action version
// (https://auth0.com/docs/customize/actions/explore-triggers/signup-and-login-triggers/login-trigger/post-login-event-object).
func (s *Server) postLoginEvent(txn *loginTxn, ver store.ActionVersion) (map[string]any, error) {
	q := s.store.Q()
	u, err := q.User(txn.Domain, txn.UserID)
	if err != nil {
		return nil, err
	}
	client, err := q.Client(txn.ClientID)
	if err != nil {
		return nil, err
	}
	conn, err := q.ConnectionByName(txn.Domain, txn.ConnectionName)
	if err != nil {
		return nil, err
	}
	secrets := map[string]any{}
	for _, sec := range ver.Secrets {
		plain, err := s.box.Open(sec.ValueSealed)
		if err != nil {
			return nil, err
		}
		secrets[sec.Name] = plain
	}
	user := userView(u, false)
	for _, k := range []string{"user_metadata", "app_metadata"} {
		if _, ok := user[k]; !ok {
			user[k] = map[string]any{}
		}
	}
	clientMeta, _ := client.Doc["client_metadata"].(map[string]any)
	connMeta := conn.Metadata
	if connMeta == nil {
		connMeta = map[string]any{}
	}
	if clientMeta == nil {
		clientMeta = map[string]any{}
	}
	event := map[string]any{
		"user":       user,
		"secrets":    secrets,
		"client":     map[string]any{"client_id": client.ClientID, "name": client.Name, "metadata": clientMeta},
		"connection": map[string]any{"id": conn.ID, "name": conn.Name, "strategy": conn.Strategy, "metadata": connMeta},
		"request": map[string]any{"query": txn.Query, "body": map[string]any{}, "method": "GET", "ip": txn.IP,
			"hostname": txn.Domain, "user_agent": txn.UserAgent, "geoip": map[string]any{}},
		"transaction": map[string]any{"id": txn.ID, "protocol": "oidc-basic-profile", "redirect_uri": txn.RedirectURI,
			"requested_scopes": strings.Fields(txn.Scope), "response_type": []string{"code"}, "state": txn.State,
			"prompt": strings.Fields(txn.Prompt), "login_hint": txn.LoginHint, "locale": "en", "ui_locales": []string{}},
		"tenant":         map[string]any{"id": strings.SplitN(txn.Domain, ".", 2)[0]},
		"authentication": map[string]any{"methods": []any{map[string]any{"name": "pwd", "timestamp": timestamp(txn.AuthTime)}}},
		"stats":          map[string]any{"logins_count": toInt(u.Doc["logins_count"])},
	}
	if txn.Audience != "" {
		event["resource_server"] = map[string]any{"identifier": txn.Audience}
	}
	return event, nil
}

// runPostLogin runs the login's actions from where it stands: the first
// one, or (after /continue) the paused one's onContinuePostLogin and then
// the rest. It answers the browser: a redirect an action asked for, the
// application's redirect_uri with an error, or with a code.
func (s *Server) runPostLogin(w http.ResponseWriter, r *http.Request, txn *loginTxn) {
	if !txn.ActionsRead {
		vs, err := s.postLoginVersions(txn.Domain)
		if err != nil {
			s.loginFailed(w, r, txn, err)
			return
		}
		txn.Actions, txn.Next, txn.ActionsRead = vs, 0, true
	}
	q := s.store.Q()
	for ; txn.Next < len(txn.Actions); txn.Next++ {
		bv := txn.Actions[txn.Next]
		handler := scripts.OnExecutePostLogin
		if txn.Paused {
			handler, txn.Paused = scripts.OnContinuePostLogin, false
		}
		ver, err := q.ActionVersion(txn.Domain, bv.ActionID, bv.VersionID)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted (with force) since the login began
		}
		if err != nil {
			s.loginFailed(w, r, txn, err)
			return
		}
		event, err := s.postLoginEvent(txn, ver)
		if err != nil {
			s.loginFailed(w, r, txn, err)
			return
		}
		out, err := s.scripts.RunAction(r.Context(), scripts.ActionRun{Code: ver.Code, Handler: handler, Event: event, HTTP: s.actionHTTP})
		var ae *scripts.ActionError
		switch {
		case errors.As(err, &ae):
			s.log.Info("post-login action failed", "tenant", txn.Domain, "action", bv.Name)
			redirectError(w, r, txn.RedirectURI, txn.State, "access_denied", ae.Message)
			return
		case errors.Is(err, scripts.ErrTimeout):
			s.log.Info("post-login action timed out", "tenant", txn.Domain, "action", bv.Name)
			redirectError(w, r, txn.RedirectURI, txn.State, "access_denied", "The action "+bv.Name+" timed out")
			return
		case err != nil:
			s.loginFailed(w, r, txn, err)
			return
		case out.Denied:
			redirectError(w, r, txn.RedirectURI, txn.State, "access_denied", out.DenyReason)
			return
		}
		for k, v := range out.IDTokenClaims {
			txn.IDClaims[k] = v
		}
		for k, v := range out.AccessTokenClaims {
			txn.AccessClaims[k] = v
		}
		if err := s.setUserMetadata(txn.Domain, txn.UserID, out); err != nil {
			s.loginFailed(w, r, txn, err)
			return
		}
		if out.Redirect != "" {
			// The platform adds its own state to the URL; the page the
			// user is sent to returns it to /continue.
			txn.Paused = true
			txn.Expires = s.now().Add(loginTxnLifetime)
			s.logins.Store(txn.ID, txn)
			http.Redirect(w, r, withQuery(out.Redirect, map[string]string{"state": txn.ID}), http.StatusFound)
			return
		}
	}
	s.completeLogin(w, r, txn)
}

// setUserMetadata keeps what an action set with api.user.set*Metadata.
func (s *Server) setUserMetadata(domain, userID string, out scripts.ActionOutcome) error {
	if len(out.UserMetadata) == 0 && len(out.AppMetadata) == 0 {
		return nil
	}
	return s.store.Tx(func(q store.Q) error {
		u, err := q.User(domain, userID)
		if err != nil {
			return err
		}
		for key, set := range map[string]map[string]any{"user_metadata": out.UserMetadata, "app_metadata": out.AppMetadata} {
			if len(set) == 0 {
				continue
			}
			m, _ := u.Doc[key].(map[string]any)
			if m == nil {
				m = map[string]any{}
			}
			for k, v := range set {
				m[k] = v
			}
			u.Doc[key] = m
		}
		u.Doc["updated_at"] = timestamp(s.now())
		return q.PutUser(u)
	})
}

// loginFailed ends a login the emulator could not carry on.
func (s *Server) loginFailed(w http.ResponseWriter, r *http.Request, txn *loginTxn, err error) {
	s.log.Error("login failed", "tenant", txn.Domain, "err", err)
	redirectError(w, r, txn.RedirectURI, txn.State, "server_error", "Internal error")
}
