package reconcile

import (
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

// recordReadiness exports obj's Ready condition.
func recordReadiness(obj Object) {
	forgetReadiness(kindOf(obj), obj.GetNamespace(), obj.GetName())
	labels := prometheus.Labels{"kind": kindOf(obj), "namespace": obj.GetNamespace(), "name": obj.GetName()}
	ready := meta.FindStatusCondition(obj.GetConditions(), identityv1alpha1.ConditionReady)
	if ready == nil {
		return
	}
	value := 0.0
	if ready.Status == metav1.ConditionTrue {
		value = 1
	}
	labels["reason"] = ready.Reason
	readyGauge.With(labels).Set(value)
}

// forgetReadiness drops the series of an object that is gone.
func forgetReadiness(kind, namespace, name string) {
	readyGauge.DeletePartialMatch(prometheus.Labels{"kind": kind, "namespace": namespace, "name": name})
}
