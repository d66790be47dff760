package identity

import "sync"

// Pool keeps one client per tenant across reconciles, so a tenant's token, connection
// pool and rate-limit budget outlive a single reconcile. It is safe for concurrent use;
// a manager makes one and hands it to every controller.
//
// Clients are keyed by Config.Fingerprint (a hash: the secret itself is never a map key).
// When a tenant's credentials, CA bundle or dial address change, Get returns a new client
// and drops the old one. The pacer is keyed by the endpoint (domain and dial address)
// only, because the rate limit belongs to the tenant, not to the credentials: clients
// old and new share it. So is the circuit breaker (see TenantDownError): whether a
// tenant answers does not depend on who asks, and every reconciler calling a tenant
// that is down shares one trickle of probes.
type Pool struct {
	opts Options

	mu sync.Mutex
	// clients by Config.Fingerprint.
	clients map[string]*client
	// current fingerprint by endpoint, to drop a tenant's superseded client.
	current map[string]string
	// pacers by endpoint.
	pacers map[string]*pacer
	// breakers by endpoint.
	breakers map[string]*breaker

	subMu sync.Mutex
	// subscribers of OnRecovered, by subscription number.
	subscribers map[int]func(domain string)
	nextSub     int
}

// NewPool makes an empty pool whose clients use opts.
func NewPool(opts Options) *Pool {
	return &Pool{
		opts:        opts.withDefaults(),
		clients:     map[string]*client{},
		current:     map[string]string{},
		pacers:      map[string]*pacer{},
		breakers:    map[string]*breaker{},
		subscribers: map[int]func(string){},
	}
}

// OnRecovered calls fn with a tenant's domain each time the tenant answers again after
// it was taken for down, so that whatever waits for it can go at once rather than at
// its next retry. fn runs on the goroutine of the call that found the tenant back, and
// must not block. The returned function ends the subscription.
func (p *Pool) OnRecovered(fn func(domain string)) (cancel func()) {
	p.subMu.Lock()
	defer p.subMu.Unlock()
	id := p.nextSub
	p.nextSub++
	p.subscribers[id] = fn
	return func() {
		p.subMu.Lock()
		defer p.subMu.Unlock()
		delete(p.subscribers, id)
	}
}

// recovered tells the subscribers that domain answers again.
func (p *Pool) recovered(domain string) {
	p.subMu.Lock()
	fns := make([]func(string), 0, len(p.subscribers))
	for _, fn := range p.subscribers {
		fns = append(fns, fn)
	}
	p.subMu.Unlock()
	for _, fn := range fns {
		fn(domain)
	}
}

// breakerGauge publishes whether a tenant's breaker is open.
func breakerGauge(m *Metrics, domain string) func(open bool) {
	g := m.BreakerOpen.WithLabelValues(domain)
	return func(open bool) {
		if open {
			g.Set(1)
		} else {
			g.Set(0)
		}
	}
}

// Get returns the tenant's client, creating it on first use or when cfg changed.
func (p *Pool) Get(cfg Config) (Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	key := cfg.Fingerprint()
	endpoint := cfg.endpointKey()

	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[key]; ok {
		return c, nil
	}
	pc, ok := p.pacers[endpoint]
	if !ok {
		pc = newPacer(p.opts.Clock, budgetGauge(p.opts.Metrics, cfg.Domain))
		p.pacers[endpoint] = pc
	}
	br, ok := p.breakers[endpoint]
	if !ok {
		domain := cfg.Domain
		br = newBreaker(p.opts.Clock, domain, breakerGauge(p.opts.Metrics, domain), func() { p.recovered(domain) })
		p.breakers[endpoint] = br
	}
	c, err := newClient(cfg, p.opts, pc)
	if err != nil {
		return nil, err
	}
	c.breaker = br
	if old, ok := p.current[endpoint]; ok {
		if oc := p.clients[old]; oc != nil {
			oc.close()
		}
		delete(p.clients, old)
	}
	p.clients[key] = c
	p.current[endpoint] = key
	return c, nil
}

// Forget drops the tenant's client, pacer and breaker, for a Tenant that was deleted.
func (p *Pool) Forget(cfg Config) {
	endpoint := cfg.endpointKey()
	p.mu.Lock()
	defer p.mu.Unlock()
	if key, ok := p.current[endpoint]; ok {
		if c := p.clients[key]; c != nil {
			c.close()
		}
		delete(p.clients, key)
		delete(p.current, endpoint)
	}
	delete(p.pacers, endpoint)
	delete(p.breakers, endpoint)
	p.opts.Metrics.RateLimitRemaining.DeleteLabelValues(cfg.Domain)
	p.opts.Metrics.BreakerOpen.DeleteLabelValues(cfg.Domain)
}

// Len is the number of clients held, for tests and debugging.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.clients)
}
