package controllers

import (
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/tenantops/identity-operator/internal/shard"
)

// shardClaimer is the claim step of one controller (see internal/shard):
// it waits for a release at most twice the reconcile timeout, the longest
// a pass of the previous instance could still be running. opts.Shard must
// be valid.
func shardClaimer(mgr ctrl.Manager, opts Options, controller string) *shard.Claimer {
	timeout := mgr.GetControllerOptions().ReconciliationTimeout
	if timeout == 0 {
		timeout = DefaultReconcileTimeout
	}
	return shard.NewClaimer(opts.Shard, mgr.GetClient(), mgr.GetAPIReader(), opts.Clock, mgr.GetEventRecorderFor(controller), 2*timeout)
}

// fleetView is, for an instance whose cache holds one shard, a second cache
// of every shard's Tenants and EmailProviders, for the PlatformMigration
// reconciler to count them all. It calls no tenant, so reading them all is
// safe. The cache runs with the controllers (under the leader's lease), and
// an instance without a selector gets none (nil): its own cache already
// holds everything.
func fleetView(mgr ctrl.Manager, cfg shard.Config, namespaces []string) (cache.Cache, error) {
	selector, err := cfg.Selector()
	if err != nil || selector.Empty() {
		return nil, err
	}
	fleet, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:       mgr.GetHTTPClient(),
		Scheme:           mgr.GetScheme(),
		Mapper:           mgr.GetRESTMapper(),
		DefaultTransform: CacheOptions().DefaultTransform,
		// Every shard's, in the namespaces this instance may read.
		DefaultNamespaces: namespaceConfigs(namespaces),
	})
	if err != nil {
		return nil, err
	}
	return fleet, mgr.Add(fleet)
}
