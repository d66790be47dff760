package controllers

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// DefaultConcurrency is how many objects of each kind are reconciled at once
// unless told otherwise (main.go's --concurrency).
const DefaultConcurrency = 10

// ManagerOptions are everything main.go's flags decide: the reconcilers'
// options, and how the manager runs them. The zero value of each field is
// main.go's default, except the addresses, which controller-runtime
// defaults.
type ManagerOptions struct {
	Options
	// Scheme knows the built-in kinds and this operator's (NewScheme when nil).
	Scheme *runtime.Scheme
	// MetricsBindAddress serves the Prometheus metrics; "0" serves none.
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz; "0" serves none.
	HealthProbeBindAddress string
	// PprofBindAddress serves Go's profiles; empty serves none.
	PprofBindAddress string
	// LeaderElection elects one active replica per shard, on the shard's
	// lease (Options.Shard.LeaseName()).
	LeaderElection bool
	// LeaderElectionNamespace holds the lease (default: the namespace the
	// operator runs in).
	LeaderElectionNamespace string
	// Concurrency is how many objects of each kind are reconciled at once
	// (DefaultConcurrency when zero).
	Concurrency int
	// ReconcileTimeout bounds one pass (DefaultReconcileTimeout when zero).
	ReconcileTimeout time.Duration
	// SkipNameValidation lets one process start the operator more than
	// once (tests restart it, or run two shards side by side).
	SkipNameValidation bool
}

// NewScheme is the scheme the operator runs with: the built-in kinds and
// this operator's.
func NewScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(identityv1alpha1.AddToScheme(scheme))
	return scheme
}

// NewManager is the one place the operator's manager is built, for main.go
// and for the tests alike: the work queue, reconcile timeout and cache
// transform of every controller (ManagerConfig, CacheOptions), leader
// election on the shard's lease, the cache narrowed to the shard's
// Tenants, EmailProviders, CustomDatabaseConnections and Actions, the health checks,
// and every reconciler (Setup). Start it with Start.
//
// Secrets, ConfigMaps, Namespaces and PlatformMigrations are never
// narrowed by the shard: every instance reads the migrations for its own
// tenants' flags, and the objects they reference are looked up by name.
// Options.WatchNamespaces narrows every namespaced kind to those
// namespaces (controller-runtime's DefaultNamespaces); the cluster-scoped
// ones (PlatformMigrations, Namespaces) are still cached cluster-wide, as
// controller-runtime does for cluster-scoped kinds under DefaultNamespaces.
func NewManager(ctx context.Context, cfg *rest.Config, opts ManagerOptions) (ctrl.Manager, error) {
	if err := opts.Shard.Validate(); err != nil {
		return nil, err
	}
	selector, _ := opts.Shard.Selector()
	if opts.Scheme == nil {
		opts.Scheme = NewScheme()
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.ReconcileTimeout == 0 {
		opts.ReconcileTimeout = DefaultReconcileTimeout
	}
	controllerConfig := ManagerConfig(opts.Concurrency, opts.ReconcileTimeout)
	if opts.SkipNameValidation {
		skip := true
		controllerConfig.SkipNameValidation = &skip
	}
	cacheOptions := CacheOptions()
	cacheOptions.DefaultNamespaces = namespaceConfigs(opts.WatchNamespaces)
	if !selector.Empty() {
		cacheOptions.ByObject = map[client.Object]cache.ByObject{}
		for _, obj := range shardedKinds() {
			cacheOptions.ByObject[obj] = cache.ByObject{Label: selector}
		}
	}

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  opts.Scheme,
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsBindAddress},
		HealthProbeBindAddress:  opts.HealthProbeBindAddress,
		PprofBindAddress:        opts.PprofBindAddress,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        opts.Shard.LeaseName(),
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// The new leader starts at once when the old one stops cleanly.
		LeaderElectionReleaseOnCancel: true,
		Controller:                    controllerConfig,
		Cache:                         cacheOptions,
	})
	if err != nil {
		return nil, err
	}
	if err := Setup(ctx, mgr, opts.Options); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, nil
}

// namespaceConfigs is cache.Options.DefaultNamespaces for the watched
// namespaces: nil (every namespace) when none.
func namespaceConfigs(namespaces []string) map[string]cache.Config {
	if len(namespaces) == 0 {
		return nil
	}
	out := make(map[string]cache.Config, len(namespaces))
	for _, ns := range namespaces {
		out[ns] = cache.Config{}
	}
	return out
}

// shardedKinds are the kinds a shard's selector narrows: a tenant and what
// is written through its credentials.
func shardedKinds() []client.Object {
	return []client.Object{&identityv1alpha1.Tenant{}, &identityv1alpha1.EmailProvider{}, &identityv1alpha1.CustomDatabaseConnection{}, &identityv1alpha1.Action{}}
}
