package controllers_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/tenantops/identity-operator/controllers"
)

// An object that exists when the operator starts (it reaches the work queue
// through the informers' first list) is reconciled even while other objects
// keep the workers busy: the queue the operator runs its controllers with
// (controllers.ManagerConfig) is first in, first out. controller-runtime's
// default priority queue would hold such an object back for as long as
// anything else is ready, which at 1,000 Tenants can be for ever.
//
// A stand-in reconciler over ConfigMaps shows it, with one worker: twenty
// "busy" objects requeue themselves every millisecond, and "early", there
// before the start, must still get its turn.
func TestObjectsPresentAtStartAreNotStarvedByBusyOnes(t *testing.T) {
	g := NewWithT(t)
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "queue-"}}
	g.Expect(k8s.Create(context.Background(), namespace)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), namespace) })
	ns := namespace.Name
	early := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "early", Namespace: ns}}
	g.Expect(k8s.Create(context.Background(), early)).To(Succeed())

	skip := true
	cfg := controllers.ManagerConfig(1, time.Minute)
	cfg.SkipNameValidation = &skip
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Controller:             cfg,
	})
	g.Expect(err).NotTo(HaveOccurred())

	// The busy objects arrive as ordinary events, queued as the informers
	// sync, so that they are there when the worker starts.
	busy := make(chan event.GenericEvent, 20)
	for i := range cap(busy) {
		busy <- event.GenericEvent{Object: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "busy-" + string(rune('a'+i)), Namespace: ns}}}
	}
	var once sync.Once
	reconciledEarly := make(chan struct{})
	var busyPasses atomic.Int64
	err = builder.ControllerManagedBy(mgr).Named("queue-order").
		For(&corev1.ConfigMap{}).
		WatchesRawSource(source.Channel(busy, &handler.EnqueueRequestForObject{})).
		Complete(reconcileFunc(func(_ context.Context, req ctrl.Request) (ctrl.Result, error) {
			if req.Name == early.Name {
				once.Do(func() { close(reconciledEarly) })
				return ctrl.Result{}, nil
			}
			busyPasses.Add(1)
			time.Sleep(time.Millisecond)
			return ctrl.Result{RequeueAfter: time.Millisecond}, nil
		}))
	g.Expect(err).NotTo(HaveOccurred())

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = mgr.Start(ctx) }()
	defer func() { cancel(); <-stopped }()

	select {
	case <-reconciledEarly:
	case <-time.After(20 * time.Second):
		t.Fatalf("the object present at start was not reconciled in 20 s while %d passes of busy objects ran", busyPasses.Load())
	}
}

// reconcileFunc adapts a function to reconcile.Reconciler.
type reconcileFunc func(context.Context, ctrl.Request) (ctrl.Result, error)

func (f reconcileFunc) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return f(ctx, req)
}
