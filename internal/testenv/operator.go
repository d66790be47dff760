package testenv

import (
	"context"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/tenantops/identity-operator/controllers"
)

// Operator is the operator running inside a test's process: a manager with
// every controller, as main.go sets it up. Stopping it is what killing the
// pod does; a test can start another one in its place.
type Operator struct {
	cancel context.CancelFunc
	done   chan error
}

// StartOperator starts a manager on cfg with every controller. mgrOpts
// carries what the test wants of the manager (leader election, workers);
// metrics and probes stay off unless it asks, and controller names may
// repeat, since a test may restart the operator in one process.
func (e *Env) StartOperator(cfg *rest.Config, mgrOpts ctrl.Options, opts controllers.Options) (*Operator, error) {
	if cfg == nil {
		cfg = e.Config
	}
	mgrOpts.Scheme = e.Scheme
	if mgrOpts.Metrics.BindAddress == "" {
		mgrOpts.Metrics = metricsserver.Options{BindAddress: "0"}
	}
	if mgrOpts.HealthProbeBindAddress == "" {
		mgrOpts.HealthProbeBindAddress = "0"
	}
	skip := true
	timeout := mgrOpts.Controller.ReconciliationTimeout
	if timeout == 0 {
		timeout = controllers.DefaultReconcileTimeout
	}
	mgrOpts.Controller = controllers.ManagerConfig(mgrOpts.Controller.MaxConcurrentReconciles, timeout)
	mgrOpts.Controller.SkipNameValidation = &skip
	if mgrOpts.Cache.DefaultTransform == nil {
		mgrOpts.Cache.DefaultTransform = controllers.CacheOptions().DefaultTransform
	}

	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := ctrl.NewManager(cfg, mgrOpts)
	if err == nil {
		err = controllers.Setup(ctx, mgr, opts)
	}
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
