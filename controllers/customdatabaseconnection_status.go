package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
)

// What a CustomDatabaseConnection reports: the phase of its migration, the
// users migrated so far, and the ScriptsValid and MigrationCompleted
// conditions.

// setScriptsValid records that the platform accepted the scripts sent.
func setScriptsValid(conn *identityv1alpha1.CustomDatabaseConnection, desired *desiredConnection) {
	fields := make([]string, 0, len(desired.scriptSources))
	for _, s := range databaseScripts {
		if _, ok := desired.scriptSources[s.key]; ok {
			fields = append(fields, s.field)
		}
	}
	meta.SetStatusCondition(&conn.Status.Conditions, metav1.Condition{Type: ConditionScriptsValid, Status: metav1.ConditionTrue,
		Reason: identityv1alpha1.ReasonScriptsAccepted, Message: "the platform accepted the scripts " + strings.Join(fields, ", "), ObservedGeneration: conn.Generation})
}

// connectionPhase is where the migration stands once the spec is applied.
func connectionPhase(conn *identityv1alpha1.CustomDatabaseConnection) identityv1alpha1.ConnectionPhase {
	switch {
	case conn.Spec.CompleteMigration:
		return identityv1alpha1.ConnectionCompleted
	case conn.Spec.ImportMode:
		return identityv1alpha1.ConnectionMigrating
	default:
		return identityv1alpha1.ConnectionActive
	}
}

// recordCompletion sets MigrationCompleted once completion is applied, with
// an event the first time; it removes the condition otherwise.
func (r *CustomDatabaseConnectionReconciler) recordCompletion(conn *identityv1alpha1.CustomDatabaseConnection) {
	if conn.Status.Phase != identityv1alpha1.ConnectionCompleted {
		meta.RemoveStatusCondition(&conn.Status.Conditions, ConditionMigrationCompleted)
		return
	}
	msg := fmt.Sprintf("login and getUser of %s find nobody: users already migrated log in as before, and the legacy store is no longer called",
		conn.Spec.ConnectionName)
	if !meta.IsStatusConditionTrue(conn.Status.Conditions, ConditionMigrationCompleted) {
		r.Recorder.Event(conn, corev1.EventTypeNormal, identityv1alpha1.EventReasonMigrationCompleted, msg)
	}
	meta.SetStatusCondition(&conn.Status.Conditions, metav1.Condition{Type: ConditionMigrationCompleted, Status: metav1.ConditionTrue,
		Reason: identityv1alpha1.ReasonLegacyStoreDisconnected, Message: msg, ObservedGeneration: conn.Generation})
}

// userCountInterval is the spec's counting cadence.
func userCountInterval(conn *identityv1alpha1.CustomDatabaseConnection) time.Duration {
	if d := conn.Spec.UserCountInterval; d != nil && d.Duration > 0 {
		return d.Duration
	}
	return defaultUserCountInterval
}

// userCountDue decides whether users are counted at now: at once when they
// never were, then again from one interval after the last count. When not
// due it says how long until they are.
func userCountDue(last *metav1.Time, interval time.Duration, now time.Time) (bool, time.Duration) {
	if last == nil {
		return true, 0
	}
	if next := last.Add(interval); now.Before(next) {
		return false, next.Sub(now)
	}
	return true, 0
}

// countUsers counts the connection's users when due (one API call), writes
// the count and progress to status, and says how long until the next count.
func (r *CustomDatabaseConnectionReconciler) countUsers(ctx context.Context, api identity.Client, tenant *identityv1alpha1.Tenant,
	conn *identityv1alpha1.CustomDatabaseConnection) (time.Duration, error) {
	interval := userCountInterval(conn)
	now := r.Clock.Now()
	due, wait := userCountDue(conn.Status.LastUserCountTime, interval, now)
	if !due && conn.Status.UsersMigrated != nil {
		// expectedUsers may have changed since the count.
		conn.Status.Progress = migrationProgress(*conn.Status.UsersMigrated, conn.Spec.ExpectedUsers)
		return wait, nil
	}
	n, err := api.CountUsersInConnection(ctx, conn.Spec.ConnectionName)
	if err != nil {
		return 0, classify(tenant, fmt.Sprintf("counting the users of connection %q", conn.Spec.ConnectionName), err)
	}
	conn.Status.UsersMigrated = ptr.To(int64(n))
	conn.Status.Progress = migrationProgress(int64(n), conn.Spec.ExpectedUsers)
	conn.Status.LastUserCountTime = &metav1.Time{Time: now}
	return interval, nil
}

// migrationProgress is "migrated/expected", or the count alone.
func migrationProgress(migrated int64, expected *int64) string {
	if expected == nil {
		return fmt.Sprint(migrated)
	}
	return fmt.Sprintf("%d/%d", migrated, *expected)
}

// readyMessage says what the connection does now, for the Ready condition.
func readyMessage(conn *identityv1alpha1.CustomDatabaseConnection) string {
	name := conn.Spec.ConnectionName
	switch conn.Status.Phase {
	case identityv1alpha1.ConnectionCompleted:
		return fmt.Sprintf("the migration of %s is completed (%s users migrated)", name, conn.Status.Progress)
	case identityv1alpha1.ConnectionMigrating:
		return fmt.Sprintf("%s migrates users from the legacy store as they log in (%s migrated)", name, conn.Status.Progress)
	default:
		return fmt.Sprintf("%s serves users from the legacy store through its scripts (%s users)", name, conn.Status.Progress)
	}
}
