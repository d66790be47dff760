// Package identity is the operator's client for the identity platform's Management API
// (Auth0's, or anything wire-compatible with it such as the test emulator).
//
// It is narrow and typed: the controllers never build URLs or parse JSON. Every call
// takes a context that bounds all of its waiting (token fetch, pacing, backoff). The
// client paces itself from the X-RateLimit-* headers so that in steady state the platform
// never answers 429, waits out a 429 when one comes anyway, retries 5xx answers and
// network errors with capped, jittered exponential backoff, and returns errors that match
// the sentinels in errors.go with errors.Is.
//
// Clients from a Pool share one circuit breaker per tenant: after a few requests in a row
// that the tenant did not answer (5xx, or no answer), every call of every client of the
// tenant fails at once with a *TenantDownError, but for one probe request at a time at
// growing intervals; the first answer closes it and Pool.OnRecovered tells whoever
// waits. While it is open a call does not retry either, so a tenant that is down draws
// a bounded trickle of requests however many callers it has.
//
// Idempotency: GET, PATCH and DELETE are retried freely (a PATCH sends the same merge
// again; a DELETE of what is gone succeeds). A create (POST) is also retried after a 5xx
// or a network error, because the alternative is a controller stuck on a transient
// failure; if the first attempt had in fact been applied, the retry is answered 409 and
// the call returns ErrConflict with APIError.Attempts > 1. Controllers treat ErrConflict
// from a create as "it exists": they look the object up (FindConnectionByName,
// GetEmailProvider, GetEmailTemplate, FindActionByName) and adopt it, so no duplicate is
// ever made.
// Password-change tickets are the exception that needs no adoption: only the newest
// ticket of a user works, and the call returns the newest.
//
// Deploying an action (DeployAction) is the one call that is not retried after a 5xx or
// a network error: every deploy makes a version, so a deploy whose answer was lost would
// make two. It returns ErrUnavailable at once; the caller reads the action, whose
// all_changes_deployed says whether the deploy was carried out. A 429 is waited out and
// retried, as everywhere: the platform did not carry the request out.
//
// Secrets (the client secret, tokens, email credentials, connection configuration and
// scripts, action secrets) are never put in errors, logs or metric labels: errors carry the operation
// and what the platform said, never the request body.
//
// Metrics, on controller-runtime's registry through DefaultMetrics:
// identity_client_requests_total{operation,code} (code 2xx, 4xx, 5xx or error),
// identity_client_rate_limited_total{operation},
// identity_client_rate_limit_remaining{tenant} (the tenant's domain),
// identity_client_request_duration_seconds{operation} and
// identity_tenant_breaker_open{domain}.
package identity

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"
)

// Client is the part of the Management API the controllers use. Implementations are
// safe for concurrent use; all calls of one tenant share its token, connection pool and
// rate-limit budget.
type Client interface {
	// Domain is the tenant this client talks to.
	Domain() string

	// GetTenantSettings reads all tenant settings.
	GetTenantSettings(ctx context.Context) (*TenantSettings, error)
	// PatchTenantSettings sends exactly the keys and flags the patch sets (one request
	// for any number of flags) and returns the settings after the change. A refused flag
	// is a *ForbiddenFlagError (ErrForbiddenFlag).
	PatchTenantSettings(ctx context.Context, patch SettingsPatch) (*TenantSettings, error)

	// FindConnectionByName returns the auth0-strategy connection with exactly this
	// name, or ErrNotFound.
	FindConnectionByName(ctx context.Context, name string) (*Connection, error)
	// GetConnection reads a connection by id (ErrNotFound when gone).
	GetConnection(ctx context.Context, id string) (*Connection, error)
	// CreateConnection creates a connection. ErrConflict when the name is taken (see
	// the package doc for retried creates).
	CreateConnection(ctx context.Context, conn ConnectionCreate) (*Connection, error)
	// UpdateConnection patches a connection. Options, when set, replace all options.
	UpdateConnection(ctx context.Context, id string, update ConnectionUpdate) (*Connection, error)
	// DeleteConnection deletes a connection; one already gone is success.
	DeleteConnection(ctx context.Context, id string) error

	// GetEmailProvider reads the provider with all its fields (ErrNotFound when none).
	// Secret credentials are never returned by the platform.
	GetEmailProvider(ctx context.Context) (*EmailProvider, error)
	// CreateEmailProvider configures the provider; ErrConflict when one exists.
	CreateEmailProvider(ctx context.Context, provider EmailProviderCreate) (*EmailProvider, error)
	// UpdateEmailProvider patches the provider (ErrNotFound when none).
	UpdateEmailProvider(ctx context.Context, update EmailProviderUpdate) (*EmailProvider, error)
	// DeleteEmailProvider removes the provider; none is success.
	DeleteEmailProvider(ctx context.Context) error

	// GetEmailTemplate reads a template by name (ErrNotFound when never created).
	GetEmailTemplate(ctx context.Context, name string) (*EmailTemplate, error)
	// CreateEmailTemplate creates a template; ErrConflict when it exists.
	CreateEmailTemplate(ctx context.Context, template EmailTemplate) (*EmailTemplate, error)
	// UpdateEmailTemplate patches a template (ErrNotFound when never created).
	UpdateEmailTemplate(ctx context.Context, name string, update EmailTemplateUpdate) (*EmailTemplate, error)

	// CountUsersInConnection is how many users the platform's store holds in the named
	// connection (for a custom database: how many have migrated).
	CountUsersInConnection(ctx context.Context, connection string) (int, error)

	// CreatePasswordChangeTicket returns the URL of a single-use password reset page.
	// The URL is a credential: do not log it.
	CreatePasswordChangeTicket(ctx context.Context, ticket PasswordChangeTicket) (string, error)

	// GetAction reads an action's draft by id (ErrNotFound when gone).
	GetAction(ctx context.Context, id string) (*Action, error)
	// FindActionByName returns the action with exactly this name (written for
	// triggerID, when not empty), or ErrNotFound.
	FindActionByName(ctx context.Context, name, triggerID string) (*Action, error)
	// CreateAction creates an action and builds its draft; a draft that does not
	// build is still created, with Status failed (see Action.BuildError). ErrConflict
	// when the name is taken.
	CreateAction(ctx context.Context, action ActionCreate) (*Action, error)
	// UpdateAction patches an action's draft and builds it again. Secrets, when set,
	// replace the whole secret set.
	UpdateAction(ctx context.Context, id string, update ActionUpdate) (*Action, error)
	// DeleteAction deletes an action; force also removes its bindings (without it,
	// deleting a bound action is refused). One already gone is success.
	DeleteAction(ctx context.Context, id string, force bool) error
	// DeployAction makes the draft a new version and has the trigger run it. Every
	// call makes a version, changed or not: deploy only when the action's
	// AllChangesDeployed is false. It is not sent again after a 5xx or no answer
	// (ErrUnavailable at once): read the action to learn whether it was carried out. A
	// draft that does not build is refused with an *ActionBuildFailedError
	// (ErrBuildFailed).
	DeployAction(ctx context.Context, id string) (*ActionVersion, error)
	// ListActionVersions lists an action's versions, newest first.
	ListActionVersions(ctx context.Context, id string) ([]ActionVersion, error)
	// ListTriggerBindings lists a trigger's bindings in execution order, each with its
	// action.
	ListTriggerBindings(ctx context.Context, triggerID string) ([]TriggerBinding, error)
	// UpdateTriggerBindings makes bindings the trigger's whole execution order, in
	// this order: a binding left out is removed. A ref to an action never deployed is
	// refused (ErrInvalid).
	UpdateTriggerBindings(ctx context.Context, triggerID string, bindings []BindingUpdate) ([]TriggerBinding, error)

	// RateLimit is the budget the platform reported last, for a controller to write to
	// status; false until a response carried the headers.
	RateLimit() (RateLimitStatus, bool)

	// GrantedScopes is what the tenant granted the current token (fetching one when
	// none is cached: the next call needs it anyway). It is cached with the token, so
	// a controller can check the scopes a spec needs before any call, at no cost.
	GrantedScopes(ctx context.Context) (Grant, error)
	// RenewGrant drops the token g came with (unless it was replaced already), so
	// the next call fetches a new one and a grant fixed on the platform shows at once
	// rather than when the token expires.
	RenewGrant(g Grant)
}

// New makes a client for one tenant with its own connection pool, token and pacer, and
// no circuit breaker: it retries every failure as Options say. Controllers should get
// clients from a Pool instead, which keeps one per tenant across reconciles and shares
// the tenant's breaker among them.
func New(cfg Config, opts Options) (Client, error) {
	return newClient(cfg, opts, nil)
}

// client implements Client over HTTPS.
type client struct {
	cfg      Config
	opts     Options
	baseURL  string
	audience string
	http     *http.Client
	tr       *http.Transport
	tokens   *tokenSource
	pacer    *pacer
	// breaker is the tenant's, shared by the pool's clients of it; nil for none.
	breaker *breaker
	metrics *Metrics
}

func newClient(cfg Config, opts Options, shared *pacer) (*client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	tr, err := newTransport(cfg)
	if err != nil {
		return nil, err
	}
	c := &client{
		cfg:      cfg,
		opts:     opts,
		baseURL:  "https://" + cfg.Domain,
		audience: "https://" + cfg.Domain + "/api/v2/",
		tr:       tr,
		// No client-wide timeout: each attempt gets RequestTimeout, the call its context.
		http:    &http.Client{Transport: tr},
		metrics: opts.Metrics,
	}
	c.tokens = &tokenSource{c: c, fetching: make(chan struct{}, 1)}
	if shared == nil {
		shared = newPacer(opts.Clock, budgetGauge(opts.Metrics, cfg.Domain))
	}
	c.pacer = shared
	return c, nil
}

// budgetGauge publishes a tenant's remaining budget.
func budgetGauge(m *Metrics, domain string) func(RateLimitStatus) {
	g := m.RateLimitRemaining.WithLabelValues(domain)
	return func(s RateLimitStatus) { g.Set(float64(s.Remaining)) }
}

// Domain implements Client.
func (c *client) Domain() string { return c.cfg.Domain }

// RateLimit implements Client.
func (c *client) RateLimit() (RateLimitStatus, bool) { return c.pacer.budget() }

// GrantedScopes implements Client.
func (c *client) GrantedScopes(ctx context.Context) (Grant, error) { return c.tokens.grant(ctx) }

// RenewGrant implements Client.
func (c *client) RenewGrant(g Grant) {
	if g.token != "" {
		c.tokens.invalidate(g.token)
	}
}

// close releases the idle connections of the client's pool.
func (c *client) close() { c.tr.CloseIdleConnections() }

// maxBody bounds what is read of a response: the answers this client reads are small.
const maxBody = 8 << 20

// send makes one HTTP attempt, reads the whole body and records metrics. The attempt is
// bounded by RequestTimeout as well as by ctx.
func (c *client) send(ctx context.Context, op string, req *http.Request) (*http.Response, []byte, error) {
	actx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	req = req.WithContext(actx)
	req.Header.Set("User-Agent", "identity-operator")
	start := c.opts.Clock.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.metrics.Requests.WithLabelValues(op, statusClass(0)).Inc()
		return nil, nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	drain(resp.Body)
	c.metrics.Duration.WithLabelValues(op).Observe(c.opts.Clock.Since(start).Seconds())
	if err != nil {
		c.metrics.Requests.WithLabelValues(op, statusClass(0)).Inc()
		return nil, nil, err
	}
	c.metrics.Requests.WithLabelValues(op, statusClass(resp.StatusCode)).Inc()
	if resp.StatusCode == http.StatusTooManyRequests {
		c.metrics.RateLimited.WithLabelValues(op).Inc()
	}
	return resp, body, nil
}

// retrier counts one call's attempts and decides, after each failure, whether and how
// long to wait before the next.
type retrier struct {
	c             *client
	op            string
	attempts      int
	serverRetries int
	rateWaits     int
}

// backoff is the jittered exponential delay before retry n (0-based): half fixed, half
// random, so that callers that failed together do not retry together.
func (r *retrier) backoff(n int) time.Duration {
	d := r.c.opts.BackoffBase << min(n, 20)
	if d > r.c.opts.BackoffCap || d <= 0 {
		d = r.c.opts.BackoffCap
	}
	return d/2 + rand.N(d/2+1)
}

// afterNetworkError waits before retrying a request that got no response, or returns
// the error that ends the call.
func (r *retrier) afterNetworkError(ctx context.Context, err error) error {
	if ctx.Err() != nil || isPermanentNetworkError(err) {
		return networkError(r.op, r.attempts, err)
	}
	if down := r.c.breaker.refusal(r.op); down != nil {
		return down
	}
	if r.serverRetries >= r.c.opts.MaxRetries || !retriedAfterFailure(r.op) {
		return networkError(r.op, r.attempts, err)
	}
	d := r.backoff(r.serverRetries)
	r.serverRetries++
	logr.FromContextOrDiscard(ctx).V(1).Info("identity API unreachable, retrying",
		"operation", r.op, "attempt", r.attempts, "wait", d.String(), "reason", errorClass(err))
	// Woken early if the tenant is taken for down meanwhile: the retry is then refused
	// at once.
	if werr := sleepCtx(ctx, r.c.opts.Clock, d, r.c.breaker.openedSignal()); werr != nil {
		return networkError(r.op, r.attempts, err)
	}
	return nil
}

// retriedAfterFailure reports whether an operation is sent again after a 5xx or no
// answer. Not a deploy: every deploy makes a version, so a deploy whose answer was lost
// and then sent again would make two. The caller reads the action instead, whose
// all_changes_deployed says whether the first one was carried out.
func retriedAfterFailure(op string) bool { return op != opDeployAction }

// afterServerError waits before retrying a 5xx, or returns the error that ends the call.
func (r *retrier) afterServerError(ctx context.Context, status int, body []byte) error {
	final := func() error { return classify(r.op, status, parseAPIError(body), r.attempts) }
	if down := r.c.breaker.refusal(r.op); down != nil {
		return down
	}
	if r.serverRetries >= r.c.opts.MaxRetries || !retriedAfterFailure(r.op) {
		return final()
	}
	d := r.backoff(r.serverRetries)
	r.serverRetries++
	logr.FromContextOrDiscard(ctx).V(1).Info("identity API failed, retrying",
		"operation", r.op, "status", status, "attempt", r.attempts, "wait", d.String())
	if err := sleepCtx(ctx, r.c.opts.Clock, d, r.c.breaker.openedSignal()); err != nil {
		return final()
	}
	return nil
}

// noAnswer tells the breaker about a request that got no response: a failure of the
// tenant, unless the caller gave up or no retry would cure it (a certificate that does
// not verify), which say nothing about whether the tenant answers.
func (c *client) noAnswer(ctx context.Context, a admission, op string, attempts int, err error) {
	if ctx.Err() != nil || isPermanentNetworkError(err) {
		c.breaker.abandoned(a)
		return
	}
	c.breaker.failed(a, networkError(op, attempts, err))
}

// answer tells the breaker about a response: a 5xx is a failure of the tenant, any other
// status (4xx and 429 included) says it answers.
func (c *client) answer(a admission, op string, attempts, status int, body []byte) {
	if status >= 500 {
		c.breaker.failed(a, classify(op, status, parseAPIError(body), attempts))
		return
	}
	c.breaker.answered()
}

// afterRateLimited waits out a 429 for the time the platform asked (and, for the
// Management API, holds every other caller of the tenant back as long), or returns ErrRateLimited when the wait would
// outlast the retries or the context.
func (r *retrier) afterRateLimited(ctx context.Context, resp *http.Response, body []byte) error {
	now := r.c.opts.Clock.Now()
	d, ok := retryAfter(resp.Header, now)
	if !ok {
		// Nothing says how long (or the reset is already past): a short backoff, not a
		// tight loop.
		d = max(time.Second, r.backoff(r.rateWaits))
	}
	if r.op != opToken {
		// The token endpoint has a budget of its own: its 429 holds back no API call.
		r.c.pacer.block(now.Add(d))
	}
	final := func() error {
		e := classify(r.op, resp.StatusCode, parseAPIError(body), r.attempts)
		if ae, ok := e.(*APIError); ok {
			ae.RetryAfter = d
		}
		return e
	}
	if r.rateWaits >= r.c.opts.MaxRateLimitWaits {
		return final()
	}
	if deadline, ok := ctx.Deadline(); ok && now.Add(d).After(deadline) {
		return final()
	}
	r.rateWaits++
	logr.FromContextOrDiscard(ctx).V(1).Info("identity API rate limit reached, waiting",
		"operation", r.op, "attempt", r.attempts, "wait", d.String())
	if err := sleepCtx(ctx, r.c.opts.Clock, d, nil); err != nil {
		return final()
	}
	return nil
}

// isPermanentNetworkError is true for failures a retry cannot cure: a certificate that
// does not verify (wrong CA bundle, wrong domain) will not verify a second later.
func isPermanentNetworkError(err error) bool {
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	return errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne)
}

// errorClass names a network error without its details.
func errorClass(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + " failed"
	}
	return "network error"
}

// apiErrorBody is the Management API's error body.
type apiErrorBody struct {
	StatusCode int    `json:"statusCode"`
	Error      string `json:"error"`
	Message    string `json:"message"`
	ErrorCode  string `json:"errorCode"`
}

func parseAPIError(body []byte) apiErrorBody {
	var b apiErrorBody
	if len(bytes.TrimSpace(body)) == 0 {
		return b
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return apiErrorBody{Message: "the response is not JSON"}
	}
	return b
}

// do sends one Management API call: it gets the tenant's token, waits for the pacer,
// sends, and retries as the package doc says. in is encoded as the JSON body, a 2xx
// answer is decoded into out. It returns the final status.
func (c *client) do(ctx context.Context, op, method, path string, query url.Values, in, out any) (int, error) {
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return 0, fmt.Errorf("identity: %s: encode request: %w", op, err)
		}
	}
	u := c.baseURL + "/api/v2/" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	r := retrier{c: c, op: op}
	refreshed := false
	for {
		tok, err := c.tokens.get(ctx)
		if err != nil {
			return 0, err
		}
		// After the token (whose fetch is admitted on its own): a probe must not wait
		// for itself.
		adm, err := c.breaker.admit(op)
		if err != nil {
			return 0, err
		}
		ticket, err := c.pacer.wait(ctx)
		if err != nil {
			c.breaker.abandoned(adm)
			return 0, &APIError{Operation: op, Message: "waiting for the rate-limit budget",
				Attempts: r.attempts, kind: ErrRateLimited, cause: err}
		}
		// The tenant may have been taken for down while this call waited for the
		// budget (a tenant that answers only 5xx sends no budget: its callers go one at
		// a time).
		if err := c.breaker.recheck(op, adm); err != nil {
			c.pacer.done(ticket, 0, nil)
			return 0, err
		}
		var bodyReader io.Reader
		if payload != nil {
			bodyReader = bytes.NewReader(payload)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, bodyReader)
		if err != nil {
			c.breaker.abandoned(adm)
			c.pacer.done(ticket, 0, nil)
			return 0, fmt.Errorf("identity: %s: build request: %w", op, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		r.attempts++
		resp, body, err := c.send(ctx, op, req)
		if err != nil {
			c.pacer.done(ticket, 0, nil)
			c.noAnswer(ctx, adm, op, r.attempts, err)
			if werr := r.afterNetworkError(ctx, err); werr != nil {
				return 0, werr
			}
			continue
		}
		c.pacer.done(ticket, resp.StatusCode, resp.Header)
		status := resp.StatusCode
		c.answer(adm, op, r.attempts, status, body)
		switch {
		case status >= 200 && status < 300:
			if out != nil && len(bytes.TrimSpace(body)) > 0 {
				if !isJSON(resp.Header.Get("Content-Type")) {
					return status, &APIError{Operation: op, StatusCode: status, Attempts: r.attempts,
						Message: "the response is not JSON", kind: ErrUnavailable}
				}
				if err := json.Unmarshal(body, out); err != nil {
					return status, &APIError{Operation: op, StatusCode: status, Attempts: r.attempts,
						Message: "cannot decode the response", kind: ErrUnavailable, cause: err}
				}
			}
			return status, nil
		case status == http.StatusUnauthorized && !refreshed:
			// The token may have been revoked or the signing key rotated: one new token.
			refreshed = true
			c.tokens.invalidate(tok)
		case status == http.StatusTooManyRequests:
			if werr := r.afterRateLimited(ctx, resp, body); werr != nil {
				return status, werr
			}
		case status >= 500:
			if werr := r.afterServerError(ctx, status, body); werr != nil {
				return status, werr
			}
		default:
			return status, classify(op, status, parseAPIError(body), r.attempts)
		}
	}
}

// isJSON accepts application/json and +json types, and a missing type (some servers
// omit it on small bodies).
func isJSON(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// seg escapes one path segment ("auth0|abc" becomes "auth0%7Cabc").
func seg(s string) string { return url.PathEscape(s) }

const (
	opGetTenantSettings          = "GetTenantSettings"
	opPatchTenantSettings        = "PatchTenantSettings"
	opFindConnectionByName       = "FindConnectionByName"
	opGetConnection              = "GetConnection"
	opCreateConnection           = "CreateConnection"
	opUpdateConnection           = "UpdateConnection"
	opDeleteConnection           = "DeleteConnection"
	opGetEmailProvider           = "GetEmailProvider"
	opCreateEmailProvider        = "CreateEmailProvider"
	opUpdateEmailProvider        = "UpdateEmailProvider"
	opDeleteEmailProvider        = "DeleteEmailProvider"
	opGetEmailTemplate           = "GetEmailTemplate"
	opCreateEmailTemplate        = "CreateEmailTemplate"
	opUpdateEmailTemplate        = "UpdateEmailTemplate"
	opCountUsersInConnection     = "CountUsersInConnection"
	opCreatePasswordChangeTicket = "CreatePasswordChangeTicket"
)

// GetTenantSettings implements Client.
func (c *client) GetTenantSettings(ctx context.Context) (*TenantSettings, error) {
	var s TenantSettings
	if _, err := c.do(ctx, opGetTenantSettings, http.MethodGet, "tenants/settings", nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// PatchTenantSettings implements Client.
func (c *client) PatchTenantSettings(ctx context.Context, patch SettingsPatch) (*TenantSettings, error) {
	var s TenantSettings
	if _, err := c.do(ctx, opPatchTenantSettings, http.MethodPatch, "tenants/settings", nil, patch, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// FindConnectionByName implements Client.
func (c *client) FindConnectionByName(ctx context.Context, name string) (*Connection, error) {
	if name == "" {
		return nil, fmt.Errorf("identity: %s: empty name", opFindConnectionByName)
	}
	q := url.Values{"strategy": {StrategyAuth0}, "name": {name}}
	var raw json.RawMessage
	if _, err := c.do(ctx, opFindConnectionByName, http.MethodGet, "connections", q, nil, &raw); err != nil {
		return nil, err
	}
	conns, err := decodeList[Connection](raw, "connections")
	if err != nil {
		return nil, &APIError{Operation: opFindConnectionByName, StatusCode: http.StatusOK,
			Message: "cannot decode the connection list", kind: ErrUnavailable, cause: err}
	}
	for i := range conns {
		// The filter is exact on the platform; checking again costs nothing and keeps a
		// lax server from handing over the wrong connection.
		if conns[i].Name == name {
			return &conns[i], nil
		}
	}
	return nil, &APIError{Operation: opFindConnectionByName, Message: "no auth0 connection named " + name, kind: ErrNotFound}
}

// decodeList reads a bare array or a paginated object holding the array under key.
func decodeList[T any](raw json.RawMessage, key string) ([]T, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var items []T
		err := json.Unmarshal(raw, &items)
		return items, err
	}
	var page map[string]json.RawMessage
	if err := json.Unmarshal(raw, &page); err != nil {
		return nil, err
	}
	var items []T
	if v, ok := page[key]; ok {
		if err := json.Unmarshal(v, &items); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// GetConnection implements Client.
func (c *client) GetConnection(ctx context.Context, id string) (*Connection, error) {
	var conn Connection
	if _, err := c.do(ctx, opGetConnection, http.MethodGet, "connections/"+seg(id), nil, nil, &conn); err != nil {
		return nil, err
	}
	return &conn, nil
}

// CreateConnection implements Client.
func (c *client) CreateConnection(ctx context.Context, create ConnectionCreate) (*Connection, error) {
	if create.Strategy == "" {
		create.Strategy = StrategyAuth0
	}
	var conn Connection
	if _, err := c.do(ctx, opCreateConnection, http.MethodPost, "connections", nil, create, &conn); err != nil {
		return nil, err
	}
	return &conn, nil
}

// UpdateConnection implements Client.
func (c *client) UpdateConnection(ctx context.Context, id string, update ConnectionUpdate) (*Connection, error) {
	var conn Connection
	if _, err := c.do(ctx, opUpdateConnection, http.MethodPatch, "connections/"+seg(id), nil, update, &conn); err != nil {
		return nil, err
	}
	return &conn, nil
}

// DeleteConnection implements Client.
func (c *client) DeleteConnection(ctx context.Context, id string) error {
	_, err := c.do(ctx, opDeleteConnection, http.MethodDelete, "connections/"+seg(id), nil, nil, nil)
	if isNotFound(err) {
		return nil
	}
	return err
}

func isNotFound(err error) bool {
	ae, ok := err.(*APIError)
	return ok && ae.kind == ErrNotFound
}

// emailProviderFields are the fields GetEmailProvider asks for: without fields the
// platform answers only name and enabled.
const emailProviderFields = "name,enabled,default_from_address,credentials,settings"

// GetEmailProvider implements Client.
func (c *client) GetEmailProvider(ctx context.Context) (*EmailProvider, error) {
	q := url.Values{"fields": {emailProviderFields}, "include_fields": {"true"}}
	var p EmailProvider
	if _, err := c.do(ctx, opGetEmailProvider, http.MethodGet, "emails/provider", q, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// CreateEmailProvider implements Client.
func (c *client) CreateEmailProvider(ctx context.Context, provider EmailProviderCreate) (*EmailProvider, error) {
	var p EmailProvider
	if _, err := c.do(ctx, opCreateEmailProvider, http.MethodPost, "emails/provider", nil, provider, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// UpdateEmailProvider implements Client.
func (c *client) UpdateEmailProvider(ctx context.Context, update EmailProviderUpdate) (*EmailProvider, error) {
	var p EmailProvider
	if _, err := c.do(ctx, opUpdateEmailProvider, http.MethodPatch, "emails/provider", nil, update, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// DeleteEmailProvider implements Client.
func (c *client) DeleteEmailProvider(ctx context.Context) error {
	_, err := c.do(ctx, opDeleteEmailProvider, http.MethodDelete, "emails/provider", nil, nil, nil)
	if isNotFound(err) {
		return nil
	}
	return err
}

// GetEmailTemplate implements Client.
func (c *client) GetEmailTemplate(ctx context.Context, name string) (*EmailTemplate, error) {
	var t EmailTemplate
	if _, err := c.do(ctx, opGetEmailTemplate, http.MethodGet, "email-templates/"+seg(name), nil, nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateEmailTemplate implements Client.
func (c *client) CreateEmailTemplate(ctx context.Context, template EmailTemplate) (*EmailTemplate, error) {
	var t EmailTemplate
	if _, err := c.do(ctx, opCreateEmailTemplate, http.MethodPost, "email-templates", nil, template, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// UpdateEmailTemplate implements Client.
func (c *client) UpdateEmailTemplate(ctx context.Context, name string, update EmailTemplateUpdate) (*EmailTemplate, error) {
	var t EmailTemplate
	if _, err := c.do(ctx, opUpdateEmailTemplate, http.MethodPatch, "email-templates/"+seg(name), nil, update, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// usersPage is the totals form of GET /api/v2/users.
type usersPage struct {
	Total *int `json:"total"`
}

// CountUsersInConnection implements Client.
func (c *client) CountUsersInConnection(ctx context.Context, connection string) (int, error) {
	// The query language quotes the name; escape what would end the quotes.
	quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(connection)
	q := url.Values{
		"q":              {`identities.connection:"` + quoted + `"`},
		"search_engine":  {"v3"},
		"include_totals": {"true"},
		// One record is the least every server pages without complaint; only the total
		// is read.
		"per_page": {"1"},
		"page":     {"0"},
	}
	var page usersPage
	if _, err := c.do(ctx, opCountUsersInConnection, http.MethodGet, "users", q, nil, &page); err != nil {
		return 0, err
	}
	if page.Total == nil {
		return 0, &APIError{Operation: opCountUsersInConnection, StatusCode: http.StatusOK,
			Message: "the answer carries no total", kind: ErrUnavailable}
	}
	return *page.Total, nil
}

// ticketResponse is the answer of POST /api/v2/tickets/password-change.
type ticketResponse struct {
	Ticket string `json:"ticket"`
}

// CreatePasswordChangeTicket implements Client.
func (c *client) CreatePasswordChangeTicket(ctx context.Context, ticket PasswordChangeTicket) (string, error) {
	var t ticketResponse
	if _, err := c.do(ctx, opCreatePasswordChangeTicket, http.MethodPost, "tickets/password-change", nil, ticket, &t); err != nil {
		return "", err
	}
	if t.Ticket == "" {
		return "", &APIError{Operation: opCreatePasswordChangeTicket, StatusCode: http.StatusCreated,
			Message: "the answer carries no ticket", kind: ErrUnavailable}
	}
	return t.Ticket, nil
}
