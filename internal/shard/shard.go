// Package shard lets several operator instances split the fleet between
// them, as Flux's controllers do: each selects its objects by a label
// (--watch-label-selector over sharding.fluxcd.io/key) and holds its own
// leader-election lease, and an object without the label belongs to the
// default instance.
//
// Selecting by label is not enough to keep two instances from writing the
// same remote object: when an object is relabelled, the instance it leaves
// may still be in the middle of a pass (or not have seen the change yet)
// while the instance it joins starts one. So every object records in
// status.shard the instance that holds it, and the rule is:
//
//   - an instance writes an object's remote state only while it holds it;
//   - it claims an object nobody holds with a status patch conditional on
//     the resourceVersion it read, before its first call (two claims cannot
//     both succeed);
//   - it releases an object (status.shard emptied, equally conditional) when
//     the object leaves its cache because the object no longer matches its
//     selector. The controller's work queue never runs two passes of one key
//     at once, so by then no pass of that object is running in that
//     controller, and none will start while the object stays out;
//   - an instance that selects an object held by another waits (condition
//     ShardHandoff, retried every few seconds) until it is released, or
//     until it has waited the takeover time, longer than the reconcile
//     timeout that bounds any pass the other instance could still be in.
//     It then takes the object over and says so in an Event. That covers an
//     old instance that is gone, or that restarted after the object had
//     left it and so never saw it leave.
//
// Each of the three namespaced kinds claims for itself, rather than an
// EmailProvider or connection following its Tenant's claim: the guarantee
// that no pass is running is per controller, so the Tenant's release says
// nothing about a pass of its EmailProvider in the same instance.
package shard

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// defaultLease is the leader-election lease of the default instance: the
// lease the operator used before it could be sharded, so that an upgrade
// of an unsharded install keeps one leader throughout the rollout.
const defaultLease = "identity-operator.identity.tenantops.io"

// Config is which share of the fleet one operator instance reconciles.
type Config struct {
	// Name of the instance (--shard-name): what it claims objects under and
	// the name of its lease. Empty, or DefaultShard, is the default instance.
	Name string
	// WatchLabelSelector selects the Tenants, EmailProviders and
	// CustomDatabaseConnections the instance reconciles
	// (--watch-label-selector, a label selector as kubectl -l takes it):
	// "sharding.fluxcd.io/key in (shard1)" for a shard,
	// "!sharding.fluxcd.io/key" for the default instance of a sharded
	// install, empty for everything.
	WatchLabelSelector string
}

// Instance is the name the instance claims objects under.
func (c Config) Instance() string {
	if c.Name == "" {
		return identityv1alpha1.DefaultShard
	}
	return c.Name
}

// LeaseName is the instance's leader-election lease: one per shard, so that
// the shards run side by side while the replicas of each elect one leader.
func (c Config) LeaseName() string {
	if c.Instance() == identityv1alpha1.DefaultShard {
		return defaultLease
	}
	return "identity-operator-" + c.Name + ".identity.tenantops.io"
}

// Selector parses WatchLabelSelector (labels.Everything when empty).
func (c Config) Selector() (labels.Selector, error) {
	s, err := labels.Parse(c.WatchLabelSelector)
	if err != nil {
		return nil, fmt.Errorf("invalid --watch-label-selector %q: %w", c.WatchLabelSelector, err)
	}
	return s, nil
}

// Validate checks the name and the selector, naming the flag at fault.
func (c Config) Validate() error {
	if errs := validation.IsDNS1123Label(c.Instance()); len(errs) > 0 {
		return fmt.Errorf("invalid --shard-name %q: %v", c.Name, errs)
	}
	_, err := c.Selector()
	return err
}

// Action is what an instance may do with an object now.
type Action int

const (
	// Proceed: this instance holds the object.
	Proceed Action = iota
	// Claim: nobody holds it; claim it, then proceed.
	Claim
	// Wait: another instance holds it; write nothing remote yet.
	Wait
	// TakeOver: another instance has held it for the whole takeover time
	// since this one began to wait; claim it anyway, then proceed.
	TakeOver
)

func (a Action) String() string {
	return [...]string{"Proceed", "Claim", "Wait", "TakeOver"}[a]
}

// Decision is what Decide says.
type Decision struct {
	Action Action
	// RetryAfter is, for Wait, when to look again: the retry interval, or
	// the takeover moment when that comes first.
	RetryAfter time.Duration
	// TakeOverAt is, for Wait, when this instance will take the object over.
	TakeOverAt time.Time
}

// Decide is the handoff rule for the instance self and an object held by
// holder (status.shard, empty when nobody holds it), which self has seen
// held by holder since waitingSince (zero: not before now). The takeover
// time must exceed the reconcile timeout, so that a pass the holder started
// before the object left it has ended.
func Decide(self, holder string, waitingSince, now time.Time, takeover, retry time.Duration) Decision {
	switch holder {
	case self:
		return Decision{Action: Proceed}
	case "":
		return Decision{Action: Claim}
	}
	if waitingSince.IsZero() || waitingSince.After(now) {
		waitingSince = now
	}
	at := waitingSince.Add(takeover)
	if !now.Before(at) {
		return Decision{Action: TakeOver}
	}
	after := at.Sub(now)
	if retry > 0 && retry < after {
		after = retry
	}
	return Decision{Action: Wait, RetryAfter: after, TakeOverAt: at}
}
