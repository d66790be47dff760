package controllers

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/migration"
)

// DefaultTransitionParallelism bounds how many tenants' PATCHes are in
// flight at once when a migration's date passes. The platform's limits are
// per tenant, so the bound protects only this process (its sockets and
// memory); each tenant sends one PATCH, on the connection its warm-up left
// open. The time at the date is about tenants / parallelism round trips:
// with 64, a thousand tenants took 1.1 s on a loaded 2-core machine where
// each round trip took ~70 ms, with both ends mostly idle.
const DefaultTransitionParallelism = 256

// transitionRecordDelay is how long after a transition a Tenant whose PATCH
// was prepared for it comes back to record the outcome. The PATCHes go out
// at the moment itself; the passes that record them (status writes, events)
// would only compete with them for the process's CPU if they ran at once.
const transitionRecordDelay = time.Second

// transitionSendTimeout bounds one tenant's PATCH at a transition. A tenant
// that does not answer in time is left to its next reconcile pass, which
// retries with backoff and reports the failure.
const transitionSendTimeout = 30 * time.Second

// transitions sends, at the moment a migration's calendar transition comes
// (its mandatory date), the settings PATCH each tenant prepared in the pass
// before it, for every tenant at once, and before any status is written for
// it: remote first. The pass prepares up to migration.PrepareAhead before
// the moment; WarmUp before it, each prepared tenant's connection is used
// once (one read), so that only the PATCH is left at the moment.
//
// Status follows: the Tenant's own pass, due at the same moment, takes the
// outcome instead of sending anything and records it. Without this, each
// tenant's PATCH waited for a worker that was busy writing other tenants'
// status to kube-apiserver, and 1,000 tenants were changed over ~5 s
// instead of at once.
//
// The Tenant reconciler stays the one writer of a tenant's settings: it
// prepares the PATCH (what settingsDiff says, sent with the tenant's pooled
// client), and a pass of the same Tenant either takes the prepared PATCH's
// outcome or, when its desired state is no longer the prepared one, drops
// it. Nothing here survives a restart, and nothing needs to: the new
// process's pass finds the declared state unapplied and reads the tenant
// first (see syncSettings), so a PATCH the old process sent is neither lost
// nor sent twice.
type transitions struct {
	clock    clock.PassiveClock
	sem      chan struct{}
	mu       sync.Mutex
	prepared map[types.NamespacedName]*preparedPatch
	// lifetime is cancelled when the manager stops; set by Start.
	lifetime context.Context
	// sent, when set, is told after each PATCH a transition sent and
	// before any pass took its outcome (tests stop the operator there).
	sent func(types.NamespacedName)
}

// preparedPatch is one tenant's PATCH, due at a moment.
type preparedPatch struct {
	at      time.Time
	desired string // the hash of the declared state the PATCH brings about
	api     identity.Client
	patch   identity.SettingsPatch

	cancel  chan struct{} // closed when a pass drops it before it was sent
	started bool          // the PATCH was sent or is being sent (under mu)
	done    chan struct{} // closed once result and err are set
	result  *identity.TenantSettings
	err     error
}

func newTransitions(c clock.PassiveClock, parallelism int) *transitions {
	if parallelism <= 0 {
		parallelism = DefaultTransitionParallelism
	}
	return &transitions{clock: c, sem: make(chan struct{}, parallelism),
		prepared: map[types.NamespacedName]*preparedPatch{}, lifetime: context.Background()}
}

// Start keeps the manager's context, so that a stopping manager (a lost
// lease) cancels what is waiting, and returns when it is done.
func (t *transitions) Start(ctx context.Context) error {
	t.mu.Lock()
	t.lifetime = ctx
	t.mu.Unlock()
	<-ctx.Done()
	t.mu.Lock()
	defer t.mu.Unlock()
	for key, p := range t.prepared {
		if !p.started {
			close(p.cancel)
		}
		delete(t.prepared, key)
	}
	return nil
}

// NeedLeaderElection: only the leader reconciles, so only it prepares.
func (t *transitions) NeedLeaderElection() bool { return true }

// prepare schedules patch for tenant key at at, replacing what was prepared
// for it before unless that is the same change at the same moment.
func (t *transitions) prepare(key types.NamespacedName, at time.Time, desired string, api identity.Client, patch identity.SettingsPatch) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.prepared[key]; ok {
		if p.started || (p.at.Equal(at) && p.desired == desired && p.api == api) {
			return
		}
		close(p.cancel)
	}
	p := &preparedPatch{at: at, desired: desired, api: api, patch: patch, cancel: make(chan struct{}), done: make(chan struct{})}
	t.prepared[key] = p
	go t.wait(key, p)
}

// wait warms the tenant's connection migration.WarmUp before p's moment
// (unless p was prepared closer to it than that), then sends p at the
// moment.
func (t *transitions) wait(key types.NamespacedName, p *preparedPatch) {
	if warm := p.at.Add(-migration.WarmUp); t.clock.Now().Before(warm) {
		if !t.sleepUntil(warm, p.cancel) {
			return
		}
		t.warm(p)
	}
	if t.sleepUntil(p.at, p.cancel) {
		t.send(key, p)
	}
}

// sleepUntil waits until the clock reaches at, false if cancel closes
// first. It sleeps in slices of at most a second and asks the clock again
// after each, so that a clock that is moved (tests) is followed, and the
// last slice ends at the moment itself.
func (t *transitions) sleepUntil(at time.Time, cancel <-chan struct{}) bool {
	for {
		left := at.Sub(t.clock.Now())
		if left <= 0 {
			return true
		}
		timer := time.NewTimer(min(left, time.Second))
		select {
		case <-cancel:
			timer.Stop()
			return false
		case <-timer.C:
		}
	}
}

// warm reads the tenant's settings once, so that its connection is open and
// its token fresh at the moment (the pass that prepared p may have been two
// minutes before, and idle connections close after 30 s). Its answer is not
// needed: a failure only means the PATCH at the moment opens its own.
func (t *transitions) warm(p *preparedPatch) {
	t.mu.Lock()
	lifetime := t.lifetime
	t.mu.Unlock()
	select {
	case t.sem <- struct{}{}:
	case <-lifetime.Done():
		return
	}
	defer func() { <-t.sem }()
	ctx, cancel := context.WithTimeout(lifetime, migration.WarmUp/2)
	defer cancel()
	_, _ = p.api.GetTenantSettings(ctx)
}

// send sends p once, whoever asks first: its timer or a pass of the tenant.
func (t *transitions) send(key types.NamespacedName, p *preparedPatch) {
	t.mu.Lock()
	if p.started || t.prepared[key] != p {
		t.mu.Unlock()
		return
	}
	p.started = true
	lifetime := t.lifetime
	t.mu.Unlock()

	select {
	case t.sem <- struct{}{}:
	case <-lifetime.Done():
		p.err = lifetime.Err()
		close(p.done)
		return
	}
	ctx, cancel := context.WithTimeout(lifetime, transitionSendTimeout)
	p.result, p.err = p.api.PatchTenantSettings(ctx, p.patch)
	cancel()
	<-t.sem
	if t.sent != nil {
		t.sent(key)
	}
	close(p.done)
}

// outcome is what a pass of tenant key, wanting desired at now, does with
// what was prepared for it. When a PATCH for exactly desired is due, it is
// sent (if its timer has not yet) and its answer returned with ok true: the
// pass records it and sends nothing itself. Anything else prepared for the
// tenant is dropped, unless already sent; ok is false and the pass goes its
// usual way.
func (t *transitions) outcome(ctx context.Context, key types.NamespacedName, desired string) (*identity.TenantSettings, error, bool) {
	t.mu.Lock()
	p, ok := t.prepared[key]
	if !ok {
		t.mu.Unlock()
		return nil, nil, false
	}
	if p.desired != desired {
		// The tenant wants something else now (its spec or a migration
		// changed): the prepared PATCH is stale.
		if !p.started {
			close(p.cancel)
		}
		delete(t.prepared, key)
		t.mu.Unlock()
		return nil, nil, false
	}
	if !p.started && t.clock.Now().Before(p.at) {
		t.mu.Unlock()
		return nil, nil, false
	}
	t.mu.Unlock()

	t.send(key, p)
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, ctx.Err(), true
	}
	t.mu.Lock()
	if t.prepared[key] == p {
		delete(t.prepared, key)
	}
	t.mu.Unlock()
	return p.result, p.err, true
}

// forget drops what was prepared for a tenant that is gone, or that left
// this instance's shard. A PATCH already on its way is this instance's
// write: forget returns once it has ended, so that the tenant is not let
// go to another instance while it is still being written.
func (t *transitions) forget(key types.NamespacedName) {
	t.mu.Lock()
	p, ok := t.prepared[key]
	if ok {
		if !p.started {
			close(p.cancel)
		}
		delete(t.prepared, key)
	}
	t.mu.Unlock()
	if ok && p.started {
		<-p.done
	}
}

// pending is how many tenants have a PATCH prepared, for tests.
func (t *transitions) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.prepared)
}
