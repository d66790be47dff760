package reconcile

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// readyGauge is 1 while an object is Ready and 0 while it is not, so that an
// alert can fire on "not Ready for 15 minutes" without kube-state-metrics.
var readyGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "identity_resource_ready",
	Help: "1 when the object's Ready condition is True, 0 otherwise, by kind, namespace and name; the reason is a label.",
}, []string{"kind", "namespace", "name", "reason"})

func init() { metrics.Registry.MustRegister(readyGauge) }

func kindOf(obj Object) string {
	switch obj.(type) {
	case *identityv1alpha1.Tenant:
		return "Tenant"
	case *identityv1alpha1.PlatformMigration:
		return "PlatformMigration"
	case *identityv1alpha1.CustomDatabaseConnection:
		return "CustomDatabaseConnection"
	case *identityv1alpha1.EmailProvider:
		return "EmailProvider"
	}
	return obj.GetObjectKind().GroupVersionKind().Kind
}

// readyReasons remembers the reason label each object's series carries, so
// that a change of reason (or the object's deletion) removes exactly that
// series: a partial-match delete would scan every series on every pass,
// which at thousands of objects is a real share of the operator's CPU.
var readyReasons = struct {
	sync.Mutex
	byObject map[readyKey]string
}{byObject: map[readyKey]string{}}

type readyKey struct{ kind, namespace, name string }

func (k readyKey) labels(reason string) prometheus.Labels {
	return prometheus.Labels{"kind": k.kind, "namespace": k.namespace, "name": k.name, "reason": reason}
}

// recordReadiness exports obj's Ready condition.
func recordReadiness(obj Object) {
	key := readyKey{kindOf(obj), obj.GetNamespace(), obj.GetName()}
	ready := meta.FindStatusCondition(obj.GetConditions(), identityv1alpha1.ConditionReady)
	readyReasons.Lock()
	defer readyReasons.Unlock()
	if old, ok := readyReasons.byObject[key]; ok && (ready == nil || old != ready.Reason) {
		readyGauge.Delete(key.labels(old))
		delete(readyReasons.byObject, key)
	}
	if ready == nil {
		return
	}
	value := 0.0
	if ready.Status == metav1.ConditionTrue {
		value = 1
	}
	readyGauge.With(key.labels(ready.Reason)).Set(value)
	readyReasons.byObject[key] = ready.Reason
}

// forgetReadiness drops the series of an object that is gone.
func forgetReadiness(kind, namespace, name string) {
	key := readyKey{kind, namespace, name}
	readyReasons.Lock()
	defer readyReasons.Unlock()
	if old, ok := readyReasons.byObject[key]; ok {
		readyGauge.Delete(key.labels(old))
		delete(readyReasons.byObject, key)
	}
}
