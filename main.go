// Command identity-operator keeps identity tenants (the Auth0 Management API
// v2 and anything wire-compatible) in the state declared by Kubernetes
// objects, and drives the platform's breaking-change migrations.
package main

import (
	"flag"
	"os"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/tenantops/identity-operator/controllers"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/managed"
	"github.com/tenantops/identity-operator/internal/memlimit"
	"github.com/tenantops/identity-operator/internal/reminder"
	"github.com/tenantops/identity-operator/internal/shard"
)

func main() {
	var (
		metricsAddr          string
		probeAddr            string
		pprofAddr            string
		leaderElect          bool
		leaderElectNamespace string
		resyncInterval       time.Duration
		stalledRetry         time.Duration
		deletionTimeout      time.Duration
		smtpRelay            string
		smtpFrom             string
		smtpUsername         string
		concurrency          int
		reconcileTimeout     time.Duration
		shardConfig          shard.Config
		migrationStatus      bool
		transitionParallel   int
		watchNamespaces      string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; \"0\" turns it off.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "Address to serve Go's /debug/pprof profiles on, for investigating memory and CPU; empty (the default) serves none.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader so that only one replica reconciles at a time.")
	flag.StringVar(&leaderElectNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the namespace the operator runs in).")
	flag.DurationVar(&resyncInterval, "resync-interval", 10*time.Minute, "How often an object in steady state is compared with its tenant (one read), to find and correct drift.")
	flag.DurationVar(&stalledRetry, "stalled-retry-interval", 30*time.Minute, "How often an object that needs a person (Stalled) is tried again anyway, in case the fix was made on the platform side.")
	flag.DurationVar(&deletionTimeout, "deletion-timeout", managed.DefaultDeletionTimeout, "How long a deleted object keeps trying to delete its remote object when the tenant cannot be reached (its credentials Secret gone, as in a namespace deletion); then its finalizer is released, the remote object left, and a Warning RemoteObjectLeft event names it.")
	flag.StringVar(&smtpRelay, "smtp-relay", "", "host:port of the SMTP relay that migration reminders are emailed through; empty sends Events only. The password is read from $SMTP_PASSWORD.")
	flag.StringVar(&smtpFrom, "smtp-from", "identity-operator@localhost", "Sender address of reminder emails.")
	flag.StringVar(&smtpUsername, "smtp-username", "", "User to authenticate to the SMTP relay as (PLAIN, over STARTTLS or to localhost).")
	flag.DurationVar(&reconcileTimeout, "reconcile-timeout", controllers.DefaultReconcileTimeout, "Longest one pass of a reconciler may take; a pass held up longer (a tenant that stops answering) is cancelled, reported in the object's conditions and retried with backoff.")
	flag.IntVar(&concurrency, "concurrency", controllers.DefaultConcurrency, "Objects of each kind reconciled at once. Calls to one tenant are paced by its rate limit whatever this is; more workers let other tenants proceed meanwhile.")
	flag.StringVar(&shardConfig.WatchLabelSelector, "watch-label-selector", "", "Reconcile only the Tenants, EmailProviders, CustomDatabaseConnections and Actions this label selector matches, as Flux's flag of that name: \"sharding.fluxcd.io/key in (shard1)\" for a shard, \"!sharding.fluxcd.io/key\" for the default instance of a sharded install; empty reconciles all.")
	flag.StringVar(&shardConfig.Name, "shard-name", "", "Name of this instance's shard: what it records in the status.shard of the objects it holds, and its leader election Lease (identity-operator-NAME.identity.tenantops.io). Empty is the default instance, which keeps the unsharded Lease.")
	flag.BoolVar(&migrationStatus, "platform-migration-status", true, "Run the PlatformMigration reconciler here: migration status, reminders and gauges, counting the tenants of every shard. Exactly one instance of a sharded install runs it (the default instance).")
	flag.IntVar(&transitionParallel, "transition-parallelism", controllers.DefaultTransitionParallelism, "Tenants sent their PATCH at once when a migration's mandatory date passes (each tenant gets one PATCH, prepared 20 s before; the platform's limits are per tenant, so this bounds only the operator's own sockets and memory).")
	logOptions := zap.Options{Development: false}
	flag.StringVar(&watchNamespaces, "watch-namespaces", "", "Comma-separated namespaces to reconcile Tenants, EmailProviders and CustomDatabaseConnections in, and the only ones whose Secrets, ConfigMaps and Events the operator reads (a namespace-scoped install: it needs RBAC in those namespaces only); PlatformMigrations and Namespaces are still read cluster-wide. Empty watches every namespace. Implies --platform-migration-status=false: an instance that sees only some tenants must not write the migrations' counts.")
	logOptions.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&logOptions)))
	log := ctrl.Log.WithName("setup")
	if memlimit.SetGCPercent() {
		log.Info("garbage collector target set (GOGC unset)", "GOGC", memlimit.DefaultGCPercent)
	}
	if soft := memlimit.Set(0.9); soft > 0 {
		log.Info("soft memory limit set from the container's", "GOMEMLIMIT", soft)
	}

	if err := shardConfig.Validate(); err != nil {
		log.Error(err, "invalid flags")
		os.Exit(2)
	}
	namespaces, err := controllers.ParseWatchNamespaces(watchNamespaces)
	if err != nil {
		log.Error(err, "invalid flags")
		os.Exit(2)
	}
	if len(namespaces) > 0 {
		statusSet := false
		flag.Visit(func(f *flag.Flag) { statusSet = statusSet || f.Name == "platform-migration-status" })
		if statusSet && migrationStatus {
			log.Error(nil, "invalid flags: --watch-namespaces needs --platform-migration-status=false: an instance that sees only some namespaces' tenants would write PlatformMigration counts that leave the others out")
			os.Exit(2)
		}
		migrationStatus = false
		log.Info("reconciling some namespaces only", "namespaces", namespaces, "platformMigrationStatus", false)
	}
	ctx := ctrl.SetupSignalHandler()
	opts := controllers.ManagerOptions{
		Options: controllers.Options{
			Pool:                   identity.NewPool(identity.Options{Metrics: identity.DefaultMetrics()}),
			ResyncInterval:         resyncInterval,
			StalledRetry:           stalledRetry,
			DeletionTimeout:        deletionTimeout,
			MetricsRegistry:        metrics.Registry,
			Shard:                  shardConfig,
			SkipPlatformMigrations: !migrationStatus,
			WatchNamespaces:        namespaces,
			TransitionParallelism:  transitionParallel,
		},
		MetricsBindAddress:      metricsAddr,
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        pprofAddr,
		LeaderElection:          leaderElect,
		LeaderElectionNamespace: leaderElectNamespace,
		Concurrency:             concurrency,
		ReconcileTimeout:        reconcileTimeout,
	}
	if smtpRelay != "" {
		relay := &reminder.SMTPRelay{Address: smtpRelay, From: smtpFrom, Username: smtpUsername, Password: os.Getenv("SMTP_PASSWORD")}
		opts.Mailer = relay
		log.Info("migration reminders are emailed", "relay", relay.String())
	}
	mgr, err := controllers.NewManager(ctx, ctrl.GetConfigOrDie(), opts)
	if err != nil {
		log.Error(err, "unable to create the manager")
		os.Exit(1)
	}
	if shardConfig.WatchLabelSelector != "" {
		log.Info("reconciling one shard", "shard", shardConfig.Instance(), "selector", shardConfig.WatchLabelSelector,
			"lease", shardConfig.LeaseName(), "platformMigrationStatus", migrationStatus)
	}

	log.Info("starting the manager")
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "the manager stopped with an error")
		os.Exit(1)
	}
}
