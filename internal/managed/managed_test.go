package managed

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/reconcile"
)

// fakeExternal is a remote object in memory; the step's rule is what is
// under test, not a platform.
type fakeExternal struct {
	obs       Observation
	createErr error
	updateErr error
	created   bool
	updated   bool
}

func (f *fakeExternal) Observe(context.Context) (Observation, error) { return f.obs, nil }
func (f *fakeExternal) Create(context.Context) error {
	if f.createErr != nil {
		f.obs = Observation{Exists: true}
		return f.createErr
	}
	f.created = true
	return nil
}
func (f *fakeExternal) Update(context.Context) error { f.updated = true; return f.updateErr }
func (f *fakeExternal) Describe() string             { return "connection users (con_1)" }
func (f *fakeExternal) Plan(exists bool) []identityv1alpha1.PlannedChange {
	field := "display_name"
	if !exists {
		field = "name"
	}
	return []identityv1alpha1.PlannedChange{{Field: field, To: `"x"`}}
}

func TestApplyRecordsOwnershipByTheRule(t *testing.T) {
	refused := fmt.Errorf("the platform refused: %w", identity.ErrInvalid)
	conflict := fmt.Errorf("exists: %w", identity.ErrConflict)
	tests := []struct {
		name   string
		before identityv1alpha1.RemoteOwnership
		ext    *fakeExternal
		want   identityv1alpha1.RemoteOwnership
		err    bool
	}{
		{"none: created", "", &fakeExternal{}, identityv1alpha1.OwnershipCreated, false},
		{"made meanwhile: adopted, then written", "", &fakeExternal{createErr: conflict}, identityv1alpha1.OwnershipAdoptedWritten, false},
		{"found by name and written", "", &fakeExternal{obs: Observation{Exists: true}}, identityv1alpha1.OwnershipAdoptedWritten, false},
		{"found by name, every write refused", "", &fakeExternal{obs: Observation{Exists: true}, updateErr: refused}, identityv1alpha1.OwnershipAdopted, true},
		{"adopted, refused again", identityv1alpha1.OwnershipAdopted, &fakeExternal{obs: Observation{Exists: true, Known: true}, updateErr: refused}, identityv1alpha1.OwnershipAdopted, true},
		{"created and still there", identityv1alpha1.OwnershipCreated, &fakeExternal{obs: Observation{Exists: true, Known: true, UpToDate: true}}, identityv1alpha1.OwnershipCreated, false},
		{"created, gone, one of that name found", identityv1alpha1.OwnershipCreated, &fakeExternal{obs: Observation{Exists: true}, updateErr: refused}, identityv1alpha1.OwnershipAdopted, true},
		{"created, gone: made again", identityv1alpha1.OwnershipAdoptedWritten, &fakeExternal{}, identityv1alpha1.OwnershipCreated, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			s := &Step{Recorder: record.NewFakeRecorder(10)}
			own := tt.before
			_, err := s.Apply(context.Background(), &identityv1alpha1.CustomDatabaseConnection{}, &own, tt.ext)
			g.Expect(err != nil).To(Equal(tt.err))
			g.Expect(own).To(Equal(tt.want))
		})
	}
}

func TestDeleteDeletesOnlyWhatTheOperatorOwns(t *testing.T) {
	tests := []struct {
		policy  identityv1alpha1.DeletionPolicy
		own     identityv1alpha1.RemoteOwnership
		deleted bool
	}{
		{identityv1alpha1.DeletionPolicyDelete, identityv1alpha1.OwnershipCreated, true},
		{identityv1alpha1.DeletionPolicyDelete, identityv1alpha1.OwnershipAdoptedWritten, true},
		{identityv1alpha1.DeletionPolicyDelete, identityv1alpha1.OwnershipAdopted, false},
		{identityv1alpha1.DeletionPolicyDelete, "", false},
		{identityv1alpha1.DeletionPolicyOrphan, identityv1alpha1.OwnershipCreated, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy)+"/"+string(tt.own), func(t *testing.T) {
			g := NewWithT(t)
			rec := record.NewFakeRecorder(10)
			s := &Step{Recorder: rec, Clock: clocktesting.NewFakePassiveClock(time.Now())}
			deleted := false
			err := s.Delete(context.Background(), &identityv1alpha1.CustomDatabaseConnection{}, tt.policy, tt.own, "connection users (con_1)",
				func(context.Context) error { deleted = true; return nil })
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(deleted).To(Equal(tt.deleted))
			if tt.own == identityv1alpha1.OwnershipAdopted {
				g.Expect(<-rec.Events).To(HavePrefix("Normal RemoteObjectLeft left connection users (con_1) in place"))
			}
		})
	}
}

func TestGiveUpAtTheDeadline(t *testing.T) {
	g := NewWithT(t)
	deadline := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	g.Expect(GiveUp(deadline.Add(-time.Nanosecond), deadline)).To(BeFalse())
	g.Expect(GiveUp(deadline, deadline)).To(BeTrue())
	g.Expect(GiveUp(deadline.Add(time.Nanosecond), deadline)).To(BeTrue())
}

func TestBoundedWaitsUntilTheDeadlineThenLetsGo(t *testing.T) {
	g := NewWithT(t)
	deleted := metav1.NewTime(time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC))
	obj := &identityv1alpha1.EmailProvider{ObjectMeta: metav1.ObjectMeta{Name: "acme-mail", DeletionTimestamp: &deleted}}
	clock := clocktesting.NewFakePassiveClock(deleted.Add(time.Minute))
	rec := record.NewFakeRecorder(10)
	s := &Step{Recorder: rec, Clock: clock, DeletionTimeout: 10 * time.Minute}
	gone := func(context.Context) error {
		return reconcile.Stalling(identityv1alpha1.ReasonCredentialsSecretNotFound, `Secret "acme-credentials" not found`)
	}

	err := s.Bounded(context.Background(), obj, "the email provider of acme.example", gone)
	var waiting *reconcile.WaitingError
	g.Expect(errors.As(err, &waiting)).To(BeTrue())
	g.Expect(waiting.Reason).To(Equal(identityv1alpha1.ReasonCredentialsSecretNotFound))
	g.Expect(waiting.RequeueAfter).To(Equal(9 * time.Minute))
	g.Expect(rec.Events).To(BeEmpty())

	clock.SetTime(deleted.Add(10 * time.Minute))
	g.Expect(s.Bounded(context.Background(), obj, "the email provider of acme.example", gone)).To(Succeed())
	g.Expect(<-rec.Events).To(And(HavePrefix("Warning RemoteObjectLeft left the email provider of acme.example in place"),
		ContainSubstring(`Secret "acme-credentials" not found`)))
}
