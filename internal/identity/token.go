package identity

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// tokenSource gets client-credentials tokens for one tenant and caches the current one
// until shortly before it expires, so every call of the tenant shares it.
type tokenSource struct {
	c *client

	// fetching is a one-slot semaphore: one fetch at a time, waited on with a context
	// (a sync.Mutex cannot be abandoned when the caller's context ends).
	fetching chan struct{}

	mu      sync.Mutex
	token   string
	renewAt time.Time
	// scopes are what the tenant granted token (see Grant).
	scopes []string
	known  bool
}

// tokenResponse is the success body of POST /oauth/token.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	// Scope is the granted scopes, space-separated.
	Scope *string `json:"scope"`
}

// oauthErrorBody is the error body of the authentication API.
type oauthErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// renewMargin is how long before expiry a token is replaced: at most 5 minutes, at most
// a tenth of its lifetime, so a short-lived token is still used for most of its life.
func renewMargin(lifetime time.Duration) time.Duration {
	return min(5*time.Minute, lifetime/10)
}

func (ts *tokenSource) cached() string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.token != "" && ts.c.opts.Clock.Now().Before(ts.renewAt) {
		return ts.token
	}
	return ""
}

// get returns a valid token, fetching one when none is cached.
func (ts *tokenSource) get(ctx context.Context) (string, error) {
	if tok := ts.cached(); tok != "" {
		return tok, nil
	}
	select {
	case ts.fetching <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-ts.fetching }()
	// Another caller may have fetched while this one waited.
	if tok := ts.cached(); tok != "" {
		return tok, nil
	}
	tok, lifetime, scope, err := ts.fetch(ctx)
	if err != nil {
		return "", err
	}
	scopes, known := grantedScopes(scope, tok)
	ts.mu.Lock()
	ts.token = tok
	ts.renewAt = ts.c.opts.Clock.Now().Add(lifetime - renewMargin(lifetime))
	ts.scopes, ts.known = scopes, known
	ts.mu.Unlock()
	return tok, nil
}

// grant is what the tenant granted the valid token, fetching one when none
// is cached (the call that follows needs it anyway).
func (ts *tokenSource) grant(ctx context.Context) (Grant, error) {
	for {
		tok, err := ts.get(ctx)
		if err != nil {
			return Grant{}, err
		}
		ts.mu.Lock()
		same := ts.token == tok
		g := Grant{Scopes: ts.scopes, Known: ts.known, token: tok}
		ts.mu.Unlock()
		if same {
			return g, nil
		}
		// Replaced between the two reads: the grant of the new token.
	}
}

// invalidate drops tok after the API refused it, unless it was replaced already (so a
// burst of 401s causes one fetch, not one per caller).
func (ts *tokenSource) invalidate(tok string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.token == tok {
		ts.token = ""
	}
}

const opToken = "GetToken"

// fetch asks /oauth/token for a token, retrying 5xx, 429 and network errors like any
// call (asking again is harmless: it creates nothing).
func (ts *tokenSource) fetch(ctx context.Context) (string, time.Duration, *string, error) {
	c := ts.c
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.cfg.ClientID},
		"client_secret": {c.cfg.ClientSecret},
		"audience":      {c.audience},
	}.Encode()
	r := retrier{c: c, op: opToken}
	for {
		// The token endpoint is the tenant's too: it goes through the tenant's breaker.
		adm, err := c.breaker.admit(opToken)
		if err != nil {
			return "", 0, nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+"/oauth/token", strings.NewReader(form))
		if err != nil {
			c.breaker.abandoned(adm)
			return "", 0, nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		r.attempts++
		resp, body, err := c.send(ctx, opToken, req)
		if err != nil {
			c.noAnswer(ctx, adm, opToken, r.attempts, err)
			if werr := r.afterNetworkError(ctx, err); werr != nil {
				return "", 0, nil, werr
			}
			continue
		}
		c.answer(adm, opToken, r.attempts, resp.StatusCode, body)
		switch {
		case resp.StatusCode == http.StatusOK:
			var tr tokenResponse
			if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
				return "", 0, nil, &APIError{Operation: opToken, StatusCode: resp.StatusCode,
					Message: "the token response is not a token", Attempts: r.attempts, kind: ErrUnavailable}
			}
			lifetime := time.Duration(tr.ExpiresIn) * time.Second
			if lifetime <= 0 {
				lifetime = time.Hour
			}
			return tr.AccessToken, lifetime, tr.Scope, nil
		case resp.StatusCode == http.StatusTooManyRequests:
			if werr := r.afterRateLimited(ctx, resp, body); werr != nil {
				return "", 0, nil, werr
			}
		case resp.StatusCode >= 500:
			if werr := r.afterServerError(ctx, resp.StatusCode, body); werr != nil {
				return "", 0, nil, werr
			}
		default:
			return "", 0, nil, tokenError(resp.StatusCode, body, r.attempts)
		}
	}
}

// tokenError classifies a refusal of /oauth/token. access_denied (bad client, or no
// grant for the Management API), invalid_client and unauthorized_client all mean the
// credentials cannot be used: ErrUnauthorized.
func tokenError(status int, body []byte, attempts int) error {
	var ob oauthErrorBody
	_ = json.Unmarshal(body, &ob)
	e := &APIError{
		Operation:  opToken,
		StatusCode: status,
		Err:        ob.Error,
		Message:    truncate(ob.ErrorDescription, maxMessageLen),
		Attempts:   attempts,
		kind:       ErrInvalid,
	}
	if e.Err == "" {
		// Maybe a Management-API shaped body.
		var ab apiErrorBody
		if json.Unmarshal(body, &ab) == nil && ab.Message != "" {
			e.Err, e.ErrorCode, e.Message = ab.Error, ab.ErrorCode, truncate(ab.Message, maxMessageLen)
		}
	}
	switch {
	case status == http.StatusUnauthorized, status == http.StatusForbidden,
		ob.Error == "access_denied", ob.Error == "invalid_client", ob.Error == "unauthorized_client":
		e.kind = ErrUnauthorized
	case status == http.StatusNotFound:
		e.kind = ErrNotFound
	}
	return e
}

// drain reads what is left of a body so the connection can be reused.
func drain(r io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 1<<20))
	_ = r.Close()
}
