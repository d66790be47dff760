package controllers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/managed"
	"github.com/tenantops/identity-operator/internal/reconcile"
	"github.com/tenantops/identity-operator/internal/reminder"
	"github.com/tenantops/identity-operator/internal/shard"
)

// Field indexes the reconcilers look objects up by.
const (
	indexTenantRef         = "spec.tenantRef.name"
	indexCredentialsSecret = "spec.credentialsSecretRef.name"
	indexCABundle          = "spec.caBundleRef.name"
)

// DefaultReconcileTimeout bounds one pass of any reconciler (the manager's
// ReconciliationTimeout). Every call to a tenant is bounded already; this is
// the backstop that keeps one stuck pass from holding its object for ever:
// the pass is cancelled, its conditions say why, and it is retried.
const DefaultReconcileTimeout = 5 * time.Minute

// ManagerConfig is how the manager runs every controller of this operator:
// workers per kind, the reconcile timeout, and a first-in first-out work
// queue.
//
// controller-runtime's priority queue (its default since v0.23) puts objects
// delivered by the informers' initial list at low priority; while requeues
// and changes keep the normal priority busy (1,000 Tenants converging, or all
// falling due at a mandatory date), an object created just before the
// operator started is never reconciled. Every object here has a remote state
// to keep and possibly a deadline to meet, so none may wait behind the
// others indefinitely: first in, first out.
func ManagerConfig(concurrency int, reconcileTimeout time.Duration) config.Controller {
	priorityQueue := false
	return config.Controller{
		MaxConcurrentReconciles: concurrency,
		ReconciliationTimeout:   reconcileTimeout,
		UsePriorityQueue:        &priorityQueue,
	}
}

// CacheOptions is how the manager caches what the controllers watch: the
// managedFields of every object are dropped on the way in. Nothing here
// reads them (status goes out as merge patches), and at 1,000 Tenants with
// their EmailProviders and CustomDatabaseConnections they are a fair share
// of the cache.
func CacheOptions() cache.Options {
	return cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
}

// maxRetryDelay caps the backoff of a failed pass: a tenant back from an
// outage is tried again within this long.
const maxRetryDelay = 5 * time.Minute

// controllerOptions are what every reconciler's controller shares: a failed
// pass is retried with per-object exponential backoff from 5 ms, capped at
// maxRetryDelay. (controller-runtime's default caps at 16 minutes, and adds
// an overall bucket of 10 retries a second, which would make 1,000 tenants
// back from a shared outage wait 100 s for their turn; calls to each tenant
// are paced by its own rate limit anyway.)
func controllerOptions() controller.Options {
	return controller.Options{
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[ctrl.Request](5*time.Millisecond, maxRetryDelay),
	}
}

// Options configure every reconciler.
type Options struct {
	// Clock is the time source of every decision; tests inject a fake one.
	Clock clock.PassiveClock
	// Pool holds one identity client per tenant.
	Pool *identity.Pool
	// WrapClient, when set, wraps every identity client the reconcilers use
	// (to trace calls; the sharding test tells the instances apart by it).
	WrapClient func(identity.Client) identity.Client
	// Shard is which share of the Tenants, EmailProviders and
	// CustomDatabaseConnections this instance reconciles, and the name it
	// holds them under (all of them, as "default", when zero).
	Shard shard.Config
	// WatchNamespaces, when set, narrows what the operator reads and
	// reconciles to these namespaces: the caches of the namespaced kinds
	// (Tenants, EmailProviders, CustomDatabaseConnections, Secrets,
	// ConfigMaps, Events) hold them only, so the operator needs no access
	// elsewhere (the chart's watchNamespaces grants it per namespace).
	// PlatformMigrations and Namespaces are cluster-scoped and still read
	// cluster-wide. Empty watches every namespace.
	WatchNamespaces []string
	// SkipPlatformMigrations leaves PlatformMigration status, reminders and
	// gauges to another instance: in a sharded install exactly one runs
	// that reconciler.
	SkipPlatformMigrations bool
	// ResyncInterval is how often an object in steady state is compared with
	// the tenant again (one read), to find drift.
	ResyncInterval time.Duration
	// StalledRetry is how often an object that needs a person is tried again
	// anyway, in case the fix was made on the platform side.
	StalledRetry time.Duration
	// DeletionTimeout bounds how long a deleted object keeps trying to clean
	// up its remote object when the tenant cannot be reached (its
	// credentials Secret deleted first, as a namespace deletion does; the
	// tenant down): then the finalizer is released, the remote object left,
	// and a Warning event names it (managed.DefaultDeletionTimeout when
	// zero).
	DeletionTimeout time.Duration
	// Mailer sends migration reminders by email; nil sends Events only.
	Mailer reminder.Mailer
	// MetricsRegistry receives the migration gauges; nil skips them.
	MetricsRegistry prometheus.Registerer
	// TransitionParallelism bounds the tenants PATCHed at once when a
	// migration's date passes (DefaultTransitionParallelism when zero).
	TransitionParallelism int
	// AfterTransitionPatch, when set, is called after each PATCH sent at a
	// transition and before its Tenant's status records it: the reliability
	// suite stops the operator there.
	AfterTransitionPatch func(types.NamespacedName)
}

// Setup registers the field indexes and the reconcilers with mgr.
func Setup(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	if err := opts.Shard.Validate(); err != nil {
		return err
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.ResyncInterval == 0 {
		opts.ResyncInterval = 10 * time.Minute
	}
	if opts.StalledRetry == 0 {
		opts.StalledRetry = 30 * time.Minute
	}
	indexer := mgr.GetFieldIndexer()
	tenantRef := func(obj client.Object) []string {
		switch o := obj.(type) {
		case *identityv1alpha1.EmailProvider:
			return []string{o.Spec.TenantRef.Name}
		case *identityv1alpha1.CustomDatabaseConnection:
			return []string{o.Spec.TenantRef.Name}
		case *identityv1alpha1.Action:
			return []string{o.Spec.TenantRef.Name}
		}
		return nil
	}
	for _, obj := range []client.Object{&identityv1alpha1.EmailProvider{}, &identityv1alpha1.CustomDatabaseConnection{}, &identityv1alpha1.Action{}} {
		if err := indexer.IndexField(ctx, obj, indexTenantRef, tenantRef); err != nil {
			return err
		}
	}
	if err := indexer.IndexField(ctx, &identityv1alpha1.Tenant{}, indexCredentialsSecret, func(obj client.Object) []string {
		return []string{obj.(*identityv1alpha1.Tenant).Spec.CredentialsSecretRef.Name}
	}); err != nil {
		return err
	}
	if err := indexer.IndexField(ctx, &identityv1alpha1.Tenant{}, indexCABundle, func(obj client.Object) []string {
		if ref := obj.(*identityv1alpha1.Tenant).Spec.CABundleRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := indexTenantsByDomain(ctx, indexer); err != nil {
		return err
	}

	contents := newContentReader(mgr.GetClient(), mgr.GetAPIReader())
	access := &TenantAccess{Reader: contents, Pool: opts.Pool, Wrap: opts.WrapClient}
	summarizer := func(name string) reconcile.Summarizer {
		return reconcile.Summarizer{Recorder: mgr.GetEventRecorderFor(name), StalledRetry: opts.StalledRetry}
	}
	remote := func(name string) *managed.Step {
		return &managed.Step{Recorder: mgr.GetEventRecorderFor(name), Clock: opts.Clock, DeletionTimeout: opts.DeletionTimeout}
	}
	transitions := newTransitions(opts.Clock, opts.TransitionParallelism)
	transitions.sent = opts.AfterTransitionPatch
	if err := mgr.Add(transitions); err != nil {
		return err
	}
	tenants := &TenantReconciler{
		Client: mgr.GetClient(), Access: access, Clock: opts.Clock, Recorder: mgr.GetEventRecorderFor("tenant-controller"),
		Summarizer: summarizer("tenant-controller"), ResyncInterval: opts.ResyncInterval, Transitions: transitions,
		Events: &onceEvents{client: mgr.GetClient(), scheme: mgr.GetScheme(), clock: opts.Clock, component: "tenant-controller"},
		Shard:  shardClaimer(mgr, opts, "tenant-controller"), Remote: remote("tenant-controller"),
	}
	if err := tenants.SetupWithManager(mgr); err != nil {
		return err
	}
	if !opts.SkipPlatformMigrations {
		fleet, err := fleetView(mgr, opts.Shard, opts.WatchNamespaces)
		if err != nil {
			return err
		}
		migrations := &PlatformMigrationReconciler{
			Client: mgr.GetClient(), Clock: opts.Clock, Recorder: mgr.GetEventRecorderFor("platformmigration-controller"),
			Summarizer: summarizer("platformmigration-controller"), Mailer: opts.Mailer,
			Metrics: NewMigrationMetrics(opts.MetricsRegistry), ResyncInterval: opts.ResyncInterval, Fleet: fleet,
		}
		if err := migrations.SetupWithManager(mgr); err != nil {
			return err
		}
	}
	providers := &EmailProviderReconciler{
		Client: mgr.GetClient(), Reader: contents, Access: access, Clock: opts.Clock,
		Recorder: mgr.GetEventRecorderFor("emailprovider-controller"), Summarizer: summarizer("emailprovider-controller"),
		ResyncInterval: opts.ResyncInterval, Shard: shardClaimer(mgr, opts, "emailprovider-controller"),
		Remote: remote("emailprovider-controller"),
	}
	if err := providers.SetupWithManager(mgr); err != nil {
		return err
	}
	connections := &CustomDatabaseConnectionReconciler{
		Client: mgr.GetClient(), Reader: contents, Access: access, Clock: opts.Clock,
		Recorder: mgr.GetEventRecorderFor("customdatabaseconnection-controller"), Summarizer: summarizer("customdatabaseconnection-controller"),
		ResyncInterval: opts.ResyncInterval, Shard: shardClaimer(mgr, opts, "customdatabaseconnection-controller"),
		Remote: remote("customdatabaseconnection-controller"),
	}
	if err := connections.SetupWithManager(mgr); err != nil {
		return err
	}
	actions := &ActionReconciler{
		Client: mgr.GetClient(), Reader: contents, Access: access, Clock: opts.Clock,
		Recorder: mgr.GetEventRecorderFor("action-controller"), Summarizer: summarizer("action-controller"),
		ResyncInterval: opts.ResyncInterval, Shard: shardClaimer(mgr, opts, "action-controller"),
		Remote: remote("action-controller"),
	}
	return actions.SetupWithManager(mgr)
}

// referencedTenant maps an object with a tenantRef to its Tenant.
func referencedTenant(_ context.Context, obj client.Object) []ctrl.Request {
	var name string
	switch o := obj.(type) {
	case *identityv1alpha1.EmailProvider:
		name = o.Spec.TenantRef.Name
	case *identityv1alpha1.CustomDatabaseConnection:
		name = o.Spec.TenantRef.Name
	case *identityv1alpha1.Action:
		name = o.Spec.TenantRef.Name
	default:
		return nil
	}
	return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: obj.GetNamespace(), Name: name}}}
}

// indexedBy maps a watched object (a Tenant, Secret or ConfigMap) to the
// objects of list's kind, in its namespace, whose field index holds its name:
// the objects that reference it. The one map function of every reconciler's
// watches on what its objects reference.
func indexedBy(reader client.Reader, list client.ObjectList, index string) handler.MapFunc {
	return func(ctx context.Context, obj client.Object) []ctrl.Request {
		found := list.DeepCopyObject().(client.ObjectList)
		if err := reader.List(ctx, found, client.InNamespace(obj.GetNamespace()), client.MatchingFields{index: obj.GetName()}); err != nil {
			// Only a missing index fails a cache List: a programming error that
			// every test would show, so a log line is enough here.
			log.FromContext(ctx).Error(err, "cannot list the objects that reference a watched object", "index", index)
			return nil
		}
		var out []ctrl.Request
		_ = meta.EachListItem(found, func(o runtime.Object) error {
			out = append(out, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(o.(client.Object))})
			return nil
		})
		return out
	}
}

// getTenant reads the Tenant an object references, or says what is missing.
func getTenant(ctx context.Context, c client.Client, namespace, name string, retry time.Duration) (*identityv1alpha1.Tenant, error) {
	tenant := &identityv1alpha1.Tenant{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, tenant); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil, reconcile.Waiting(identityv1alpha1.ReasonTenantNotFound, retry,
				"Tenant %q (spec.tenantRef) not found in namespace %q: create it, or fix the reference", name, namespace)
		}
		return nil, err
	}
	// A Tenant refused as a second writer of its domain is no way to the
	// tenant: its credentials would swap the first one's pooled client.
	if err := checkOnlyTenant(ctx, c, tenant); err != nil {
		return nil, err
	}
	return tenant, nil
}
