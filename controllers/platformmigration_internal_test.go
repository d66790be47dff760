package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/migration"
)

// A pass that reads the migration from a cache that has not seen the status
// write of the round just sent (lastReminderTime still empty) must not send
// the round again; a migration made again under the same name starts afresh.
func TestAReminderRoundIsNotSentAgainFromAStaleCache(t *testing.T) {
	g := NewWithT(t)
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	hour := metav1.Duration{Duration: time.Hour}
	stale := &identityv1alpha1.PlatformMigration{
		ObjectMeta: metav1.ObjectMeta{Name: "eol", UID: "uid-1", CreationTimestamp: metav1.NewTime(now.Add(-48 * time.Hour))},
		Spec: identityv1alpha1.PlatformMigrationSpec{Severity: "Medium", ReminderInterval: &hour,
			MandatoryOptIn: &metav1.Time{Time: now.Add(-time.Hour)}},
		Status: identityv1alpha1.PlatformMigrationStatus{Phase: identityv1alpha1.PhaseEnforced},
	}
	acme := &identityv1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "acme"},
		Spec: identityv1alpha1.TenantSpec{Domain: "acme.example.com"}}
	outcomes := []tenantOutcome{{tenant: acme, state: identityv1alpha1.MigrationAffected, reason: migration.ReasonCustomDatabaseOnOldSandbox}}
	rec := record.NewFakeRecorder(10)
	r := &PlatformMigrationReconciler{Recorder: rec}
	sent := func() int {
		n := 0
		for {
			select {
			case <-rec.Events:
				n++
			default:
				return n
			}
		}
	}

	round := func(m *identityv1alpha1.PlatformMigration, at time.Time) {
		_, err := r.remind(context.Background(), m.DeepCopy(), outcomes, at)
		g.Expect(err).NotTo(HaveOccurred())
	}
	round(stale, now)
	g.Expect(sent()).To(Equal(1), "the first round")
	round(stale, now.Add(time.Second))
	g.Expect(sent()).To(BeZero(), "the same round, read again before the cache saw its status")
	round(stale, now.Add(time.Hour))
	g.Expect(sent()).To(Equal(1), "the next round, an interval later")

	again := stale.DeepCopy()
	again.UID = "uid-2"
	round(again, now.Add(time.Hour+time.Second))
	g.Expect(sent()).To(Equal(1), "a new migration of the same name")
}
