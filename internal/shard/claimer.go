package shard

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/reconcile"
)

// Reasons and event reasons of the handoff.
const (
	// ReasonShardHandoff is the Ready reason while an instance waits.
	ReasonShardHandoff = "ShardHandoff"
	// ReasonWaitingForRelease is the ShardHandoff condition's reason.
	ReasonWaitingForRelease = "WaitingForRelease"
	// EventReasonTakeover is posted when an instance takes an object over
	// without its release.
	EventReasonTakeover = "ShardTakeover"
	// EventReasonReleased is posted when an instance lets an object go.
	EventReasonReleased = "ShardReleased"
)

// DefaultRetry is how often a waiting instance looks again: a release does
// not wake it (status writes do not), so this is how long a handoff takes
// at most once the previous instance has let go.
const DefaultRetry = 5 * time.Second

// Object is a kind that can be held by an instance.
type Object interface {
	reconcile.Object
	GetShard() string
	SetShard(string)
}

// Claimer applies the handoff rule (see the package doc) for one
// controller; it is the reconcile.Ownership of Pass.
type Claimer struct {
	// Config names this instance and its selector.
	Config Config
	// Client writes the claims (status patches).
	Client client.Client
	// APIReader reads an object the cache no longer has, to release it.
	APIReader client.Reader
	// Clock is the time source of the takeover decision.
	Clock clock.PassiveClock
	// Recorder posts the takeover and release events.
	Recorder record.EventRecorder
	// Takeover is how long this instance waits for a release: more than
	// the reconcile timeout.
	Takeover time.Duration
	// Retry is how often a waiting instance looks again (DefaultRetry).
	Retry time.Duration

	selector labels.Selector
	mu       sync.Mutex
	// waiting is since when, and on which holder, this instance has waited
	// for each object. It is kept in memory on purpose: a restart starts the
	// wait again (later, so safe), and a wait another instance began does
	// not count towards this one's takeover.
	waiting map[types.NamespacedName]wait
}

type wait struct {
	holder string
	since  time.Time
}

// NewClaimer returns the Claimer of one controller; cfg must be valid
// (Config.Validate).
func NewClaimer(cfg Config, c client.Client, apiReader client.Reader, clk clock.PassiveClock, recorder record.EventRecorder, takeover time.Duration) *Claimer {
	selector, err := cfg.Selector()
	if err != nil {
		selector = labels.Nothing() // not reached after Validate; releases nothing
	}
	return &Claimer{Config: cfg, Client: c, APIReader: apiReader, Clock: clk, Recorder: recorder, Takeover: takeover,
		Retry: DefaultRetry, selector: selector, waiting: map[types.NamespacedName]wait{}}
}

// Claim implements reconcile.Ownership.
func (c *Claimer) Claim(ctx context.Context, o reconcile.Object) error {
	obj, ok := o.(Object)
	if !ok {
		return fmt.Errorf("shard: %T has no status.shard", o)
	}
	self, holder := c.Config.Instance(), obj.GetShard()
	key := client.ObjectKeyFromObject(obj)
	now := c.Clock.Now()
	d := Decide(self, holder, c.waitingSince(key, holder, now), now, c.Takeover, c.Retry)
	switch d.Action {
	case Proceed:
		c.forget(key)
		removeHandoff(obj)
		return nil
	case Wait:
		msg := fmt.Sprintf("shard %q holds this object (status.shard) and writes it; shard %q, which selects it now, "+
			"writes nothing until %q lets it go (as soon as it sees the object leave its selection), or takes it over at %s",
			holder, self, holder, d.TakeOverAt.UTC().Format(time.RFC3339))
		conditions := obj.GetConditions()
		meta.SetStatusCondition(&conditions, metav1.Condition{Type: identityv1alpha1.ConditionShardHandoff, Status: metav1.ConditionTrue,
			Reason: ReasonWaitingForRelease, Message: msg, ObservedGeneration: obj.GetGeneration(), LastTransitionTime: metav1.NewTime(now)})
		obj.SetConditions(conditions)
		return reconcile.Waiting(ReasonShardHandoff, d.RetryAfter, "%s", msg)
	}

	// Claim or TakeOver: conditional on the resourceVersion read, so that of
	// two instances claiming at once one gets a conflict.
	claimed := obj.DeepCopyObject().(Object)
	claimed.SetShard(self)
	removeHandoff(claimed)
	if err := c.Client.Status().Patch(ctx, claimed, client.MergeFromWithOptions(obj, client.MergeFromWithOptimisticLock{}), reconcile.FieldOwner); err != nil {
		return err
	}
	reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(claimed).Elem())
	c.forget(key)
	if d.Action == TakeOver {
		c.Recorder.Eventf(obj, corev1.EventTypeWarning, EventReasonTakeover,
			"shard %q did not let go of this object within %s of shard %q finding it in its selection: %q takes it over "+
				"(the previous instance is gone, or restarted after the object had left it)", holder, c.Takeover, self, self)
		log.FromContext(ctx).Info("took the object over from another shard", "from", holder, "shard", self)
	}
	return nil
}

// Release implements reconcile.Ownership: it empties status.shard of an
// object this instance holds but no longer selects. An instance without a
// selector loses objects from its cache only when they are deleted, so it
// reads nothing.
func (c *Claimer) Release(ctx context.Context, key types.NamespacedName, empty reconcile.Object) error {
	c.forget(key)
	if c.selector == nil || c.selector.Empty() {
		return nil
	}
	obj, ok := reflect.New(reflect.TypeOf(empty).Elem()).Interface().(Object)
	if !ok {
		return fmt.Errorf("shard: %T has no status.shard", empty)
	}
	if err := c.APIReader.Get(ctx, key, obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	self := c.Config.Instance()
	if obj.GetShard() != self || c.selector.Matches(labels.Set(obj.GetLabels())) {
		return nil // not ours, or back in our selection (a pass follows)
	}
	released := obj.DeepCopyObject().(Object)
	released.SetShard("")
	if err := c.Client.Status().Patch(ctx, released, client.MergeFromWithOptions(obj, client.MergeFromWithOptimisticLock{}), reconcile.FieldOwner); err != nil {
		return client.IgnoreNotFound(err)
	}
	c.Recorder.Eventf(released, corev1.EventTypeNormal, EventReasonReleased,
		"shard %q let go of this object: it no longer selects it (label %s=%q)", self, identityv1alpha1.ShardLabel, obj.GetLabels()[identityv1alpha1.ShardLabel])
	log.FromContext(ctx).Info("released the object to another shard", "shard", self)
	return nil
}

// waitingSince is since when this instance has waited for holder to let go
// of the object (zero: it starts waiting now).
func (c *Claimer) waitingSince(key types.NamespacedName, holder string, now time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.waiting[key]
	if !ok || w.holder != holder {
		w = wait{holder: holder, since: now}
		if holder != "" && holder != c.Config.Instance() {
			c.waiting[key] = w
		}
	}
	return w.since
}

func (c *Claimer) forget(key types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.waiting, key)
}

func removeHandoff(obj reconcile.Object) {
	conditions := obj.GetConditions()
	if meta.RemoveStatusCondition(&conditions, identityv1alpha1.ConditionShardHandoff) {
		obj.SetConditions(conditions)
	}
}
