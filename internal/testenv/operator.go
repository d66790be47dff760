package testenv

import (
	"context"

	"k8s.io/client-go/rest"

	"github.com/tenantops/identity-operator/controllers"
)

// Operator is the operator running inside a test's process: the manager
// main.go builds (controllers.NewManager), with every controller. Stopping it
// is what killing the pod does; a test can start another one in its place,
// or several side by side (shards).
type Operator struct {
	cancel context.CancelFunc
	done   chan error
}

// StartOperator starts the operator on cfg (nil: as an administrator) with
// opts as main.go's flags would set them. Metrics and probes stay off unless
// opts asks, and controller names may repeat, since a test may restart the
// operator in one process or run several.
func (e *Env) StartOperator(cfg *rest.Config, opts controllers.ManagerOptions) (*Operator, error) {
	if cfg == nil {
		cfg = e.Config
	}
	opts.Scheme = e.Scheme
	if opts.MetricsBindAddress == "" {
		opts.MetricsBindAddress = "0"
	}
	if opts.HealthProbeBindAddress == "" {
		opts.HealthProbeBindAddress = "0"
	}
	opts.SkipNameValidation = true

	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := controllers.NewManager(ctx, cfg, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	o := &Operator{cancel: cancel, done: make(chan error, 1)}
	go func() { o.done <- mgr.Start(ctx) }()
	return o, nil
}

// Stop stops the operator and returns what its manager ended with.
func (o *Operator) Stop() error {
	o.cancel()
	err := <-o.done
	o.done <- err
	return err
}

// Running reports whether the operator is still running (it has not been
// stopped and its manager has not failed).
func (o *Operator) Running() bool {
	select {
	case err := <-o.done:
		o.done <- err
		return false
	default:
		return true
	}
}
