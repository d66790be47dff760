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
// old and new share it.
type Pool struct {
	opts Options

	mu sync.Mutex
	// clients by Config.Fingerprint.
	clients map[string]*client
	// current fingerprint by endpoint, to drop a tenant's superseded client.
	current map[string]string
	// pacers by endpoint.
	pacers map[string]*pacer
}

// NewPool makes an empty pool whose clients use opts.
func NewPool(opts Options) *Pool {
	return &Pool{
		opts:    opts.withDefaults(),
		clients: map[string]*client{},
		current: map[string]string{},
		pacers:  map[string]*pacer{},
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
	c, err := newClient(cfg, p.opts, pc)
	if err != nil {
		return nil, err
	}
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

// Forget drops the tenant's client and pacer, for a Tenant that was deleted.
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
	p.opts.Metrics.RateLimitRemaining.DeleteLabelValues(cfg.Domain)
}

// Len is the number of clients held, for tests and debugging.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.clients)
}
