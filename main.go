// Command identity-operator keeps identity tenants (the Auth0 Management API
// v2 and anything wire-compatible) in the state declared by Kubernetes
// objects, and drives the platform's breaking-change migrations.
package main

import (
	"flag"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/controllers"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/memlimit"
	"github.com/tenantops/identity-operator/internal/reminder"
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
		smtpRelay            string
		smtpFrom             string
		smtpUsername         string
		concurrency          int
		reconcileTimeout     time.Duration
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; \"0\" turns it off.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "Address to serve Go's /debug/pprof profiles on, for investigating memory and CPU; empty (the default) serves none.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader so that only one replica reconciles at a time.")
	flag.StringVar(&leaderElectNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the namespace the operator runs in).")
	flag.DurationVar(&resyncInterval, "resync-interval", 10*time.Minute, "How often an object in steady state is compared with its tenant (one read), to find and correct drift.")
	flag.DurationVar(&stalledRetry, "stalled-retry-interval", 30*time.Minute, "How often an object that needs a person (Stalled) is tried again anyway, in case the fix was made on the platform side.")
	flag.StringVar(&smtpRelay, "smtp-relay", "", "host:port of the SMTP relay that migration reminders are emailed through; empty sends Events only. The password is read from $SMTP_PASSWORD.")
	flag.StringVar(&smtpFrom, "smtp-from", "identity-operator@localhost", "Sender address of reminder emails.")
	flag.StringVar(&smtpUsername, "smtp-username", "", "User to authenticate to the SMTP relay as (PLAIN, over STARTTLS or to localhost).")
	flag.DurationVar(&reconcileTimeout, "reconcile-timeout", controllers.DefaultReconcileTimeout, "Longest one pass of a reconciler may take; a pass held up longer (a tenant that stops answering) is cancelled, reported in the object's conditions and retried with backoff.")
	flag.IntVar(&concurrency, "concurrency", 10, "Objects of each kind reconciled at once. Calls to one tenant are paced by its rate limit whatever this is; more workers let other tenants proceed meanwhile.")
	logOptions := zap.Options{Development: false}
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

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(identityv1alpha1.AddToScheme(scheme))

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        pprofAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        "identity-operator.identity.tenantops.io",
		LeaderElectionNamespace: leaderElectNamespace,
		// The new leader starts at once when the old one stops cleanly.
		LeaderElectionReleaseOnCancel: true,
		Controller:                    controllers.ManagerConfig(concurrency, reconcileTimeout),
		Cache:                         controllers.CacheOptions(),
	})
	if err != nil {
		log.Error(err, "unable to create the manager")
		os.Exit(1)
	}

	ctx := ctrl.SetupSignalHandler()
	pool := identity.NewPool(identity.Options{Metrics: identity.DefaultMetrics()})
	opts := controllers.Options{
		Pool:            pool,
		ResyncInterval:  resyncInterval,
		StalledRetry:    stalledRetry,
		MetricsRegistry: metrics.Registry,
	}
	if smtpRelay != "" {
		relay := &reminder.SMTPRelay{Address: smtpRelay, From: smtpFrom, Username: smtpUsername, Password: os.Getenv("SMTP_PASSWORD")}
		opts.Mailer = relay
		log.Info("migration reminders are emailed", "relay", relay.String())
	}
	if err := controllers.Setup(ctx, mgr, opts); err != nil {
		log.Error(err, "unable to set up the controllers")
		os.Exit(1)
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "unable to add the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "unable to add the readiness check")
		os.Exit(1)
	}

	log.Info("starting the manager")
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "the manager stopped with an error")
		os.Exit(1)
	}
}
