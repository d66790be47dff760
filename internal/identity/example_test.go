package identity_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tenantops/identity-operator/internal/identity"
)

// A controller keeps one Pool for the manager's lifetime and asks it for the tenant's
// client on every reconcile: the token, the connection pool and the rate-limit budget
// carry over, and new credentials give a new client.
func ExamplePool() {
	pool := identity.NewPool(identity.Options{})

	reconcile := func(ctx context.Context, cfg identity.Config) (time.Duration, error) {
		c, err := pool.Get(cfg)
		if err != nil {
			return 0, err // a bad CA bundle or missing credentials: a Stalled condition
		}
		var patch identity.SettingsPatch
		patch.SetFlag("change_pwd_flow_v1", false)
		patch.SetFlag("enable_legacy_profile", false)
		_, err = c.PatchTenantSettings(ctx, patch) // one request for every flag
		var forbidden *identity.ForbiddenFlagError
		var apiErr *identity.APIError
		switch {
		case errors.As(err, &forbidden):
			return 0, fmt.Errorf("the platform refuses flag %s: %w", forbidden.Flag, err) // terminal
		case errors.Is(err, identity.ErrRateLimited) && errors.As(err, &apiErr):
			return apiErr.RetryAfter, nil // requeue when the platform allows
		case err != nil:
			return 0, err // ErrUnavailable and the rest: back off and retry
		}
		if budget, ok := c.RateLimit(); ok {
			_ = budget.Remaining // written to the Tenant's status
		}
		return 0, nil
	}
	_ = reconcile
}

// Creating is idempotent from the controller's side: a conflict, including one caused
// by the client's own retry of a create whose answer was lost, means "adopt it".
func ExampleClient_CreateConnection() {
	ensure := func(ctx context.Context, c identity.Client, want identity.ConnectionCreate) (*identity.Connection, error) {
		conn, err := c.FindConnectionByName(ctx, want.Name)
		if err == nil {
			return conn, nil
		}
		if !errors.Is(err, identity.ErrNotFound) {
			return nil, err
		}
		conn, err = c.CreateConnection(ctx, want)
		if errors.Is(err, identity.ErrConflict) {
			return c.FindConnectionByName(ctx, want.Name)
		}
		return conn, err
	}
	_ = ensure
}
