package reconcile

import (
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

func tenant() *identityv1alpha1.Tenant {
	return &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: "team-a", Generation: 3}}
}

func TestSummarizeSetsConditionsAsKstatusReadsThem(t *testing.T) {
	tests := []struct {
		name          string
		err           error
		wantReady     metav1.ConditionStatus
		wantReason    string
		wantStalled   bool
		wantReconcile bool
		wantRequeue   time.Duration
		wantErr       bool
		wantObserved  int64
	}{
		{"success", nil, metav1.ConditionTrue, "Synced", false, false, time.Minute, false, 3},
		{"stalling", Stalling("FlagRefused", "remove flag x"), metav1.ConditionFalse, "FlagRefused", true, false, time.Hour, false, 3},
		{"waiting", Waiting("RateLimited", 7*time.Second, "later"), metav1.ConditionFalse, "RateLimited", false, true, 7 * time.Second, false, 0},
		{"transient", Transient("TenantUnreachable", errors.New("dial tcp: refused")), metav1.ConditionFalse, "TenantUnreachable", false, true, 0, true, 0},
		{"unclassified", errors.New("boom"), metav1.ConditionFalse, ReasonReconcileError, false, true, 0, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			obj := tenant()
			rec := record.NewFakeRecorder(10)
			s := Summarizer{Recorder: rec, StalledRetry: time.Hour}
			result, err := s.Summarize(obj, Success{Reason: "Synced", Message: "ok", RequeueAfter: time.Minute}, tt.err)
			g.Expect(err != nil).To(Equal(tt.wantErr))
			g.Expect(result.RequeueAfter).To(Equal(tt.wantRequeue))
			ready := meta.FindStatusCondition(obj.Status.Conditions, identityv1alpha1.ConditionReady)
			g.Expect(ready.Status).To(Equal(tt.wantReady))
			g.Expect(ready.Reason).To(Equal(tt.wantReason))
			g.Expect(ready.ObservedGeneration).To(BeEquivalentTo(3))
			g.Expect(meta.IsStatusConditionTrue(obj.Status.Conditions, identityv1alpha1.ConditionStalled)).To(Equal(tt.wantStalled))
			g.Expect(meta.IsStatusConditionTrue(obj.Status.Conditions, identityv1alpha1.ConditionReconciling)).To(Equal(tt.wantReconcile))
			g.Expect(obj.Status.ObservedGeneration).To(Equal(tt.wantObserved), "observedGeneration after a successful or a stalled pass, never while progressing")
			g.Expect(rec.Events).To(HaveLen(1), "the first Ready is a transition")
		})
	}
}

func TestSummarizeEmitsEventsOnTransitionsOnly(t *testing.T) {
	g := NewWithT(t)
	obj := tenant()
	rec := record.NewFakeRecorder(10)
	s := Summarizer{Recorder: rec}
	ok := Success{Reason: "Synced", Message: "ok"}
	for range 3 {
		_, _ = s.Summarize(obj, ok, nil)
	}
	_, _ = s.Summarize(obj, ok, Stalling("FlagRefused", "remove flag x"))
	_, _ = s.Summarize(obj, ok, Stalling("FlagRefused", "remove flag x"))
	_, _ = s.Summarize(obj, ok, nil)
	g.Expect(rec.Events).To(HaveLen(3))
	g.Expect(<-rec.Events).To(HavePrefix("Normal Synced"))
	g.Expect(<-rec.Events).To(HavePrefix("Warning FlagRefused"))
	g.Expect(<-rec.Events).To(HavePrefix("Normal Synced"))
}

func TestReadinessGaugeFollowsReadyAndForgetsDeletedObjects(t *testing.T) {
	g := NewWithT(t)
	obj := tenant()
	s := Summarizer{}
	_, _ = s.Summarize(obj, Success{Reason: "Synced"}, Stalling("CredentialsSecretNotFound", "create it"))
	g.Expect(testutil.ToFloat64(readyGauge.WithLabelValues("Tenant", "team-a", "acme", "CredentialsSecretNotFound"))).To(BeZero())
	_, _ = s.Summarize(obj, Success{Reason: "Synced"}, nil)
	g.Expect(testutil.ToFloat64(readyGauge.WithLabelValues("Tenant", "team-a", "acme", "Synced"))).To(Equal(1.0))
	g.Expect(seriesFor("acme")).To(Equal(1), "the old reason's series is gone")
	forgetReadiness("Tenant", "team-a", "acme")
	g.Expect(seriesFor("acme")).To(BeZero())
}

func seriesFor(name string) int {
	n := 0
	ch := make(chan prometheus.Metric, 100)
	go func() { readyGauge.Collect(ch); close(ch) }()
	for m := range ch {
		if strings.Contains(m.Desc().String(), "identity_resource_ready") && hasLabel(m, name) {
			n++
		}
	}
	return n
}

func TestPausedAnnotationSetsAndClearsThePausedCondition(t *testing.T) {
	g := NewWithT(t)
	obj := tenant()
	obj.Annotations = map[string]string{identityv1alpha1.PausedAnnotation: "true"}
	g.Expect(IsPaused(obj)).To(BeTrue())
	g.Expect(meta.IsStatusConditionTrue(obj.Status.Conditions, identityv1alpha1.ConditionPaused)).To(BeTrue())
	obj.Annotations = nil
	g.Expect(IsPaused(obj)).To(BeFalse())
	g.Expect(meta.FindStatusCondition(obj.Status.Conditions, identityv1alpha1.ConditionPaused)).To(BeNil())
}

func hasLabel(m prometheus.Metric, value string) bool {
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		return false
	}
	for _, l := range out.GetLabel() {
		if l.GetValue() == value {
			return true
		}
	}
	return false
}
