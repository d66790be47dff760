package identity_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/test/emulator/emulatortest"
)

// A tenant the emulator takes down (every request answered 503) over real HTTPS: the
// pool's clients stop calling it after three failed requests, the tenant next to it on
// the same emulator is served, and the first probe after it is back closes the breaker
// and tells the pool's subscribers.
func TestEmulatorTenantDownIsLeftAloneUntilTheProbe(t *testing.T) {
	e := emulatortest.Start(t)
	down := newTenant(t, e, "down.emulator.local")
	up := newTenant(t, e, "up.emulator.local")
	pool := identity.NewPool(identity.Options{
		Metrics:     identity.NewMetrics(prometheus.NewRegistry()),
		BackoffBase: 10 * time.Millisecond,
		BackoffCap:  100 * time.Millisecond,
	})
	var mu sync.Mutex
	var recovered []string
	defer pool.OnRecovered(func(domain string) {
		mu.Lock()
		defer mu.Unlock()
		recovered = append(recovered, domain)
	})()
	get := func(tn *tenant) identity.Client {
		c, err := pool.Get(tn.config(tn.creds))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetTenantSettings(ctxT(t)); err != nil {
			t.Fatalf("%s before the outage: %v", tn.domain, err)
		}
		return c
	}
	downClient, upClient := get(down), get(up)
	total := func(domain string) int {
		n := 0
		for _, v := range e.Requests(domain) {
			n += v
		}
		return n
	}

	e.SetTenantDown(down.domain, true)
	before := total(down.domain)
	_, err := downClient.GetTenantSettings(ctxT(t))
	var tdown *identity.TenantDownError
	if !errors.As(err, &tdown) {
		t.Fatalf("err = %v, want a *TenantDownError", err)
	}
	for range 10 {
		if _, err := downClient.GetEmailProvider(ctxT(t)); !errors.Is(err, identity.ErrTenantDown) {
			t.Fatalf("call while down: %v", err)
		}
		if _, err := upClient.GetTenantSettings(ctxT(t)); err != nil {
			t.Fatalf("the other tenant: %v", err)
		}
	}
	if got := total(down.domain) - before; got != 3 {
		t.Errorf("the down tenant drew %d requests, want 3", got)
	}

	e.SetTenantDown(down.domain, false)
	time.Sleep(time.Until(tdown.NextProbe))
	if _, err := downClient.GetTenantSettings(ctxT(t)); err != nil {
		t.Fatalf("the probe after the outage: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(recovered) != 1 || recovered[0] != down.domain {
		t.Errorf("recovered %v, want [%s]", recovered, down.domain)
	}
	if _, err := downClient.GetEmailProvider(context.Background()); err != nil && !errors.Is(err, identity.ErrNotFound) {
		t.Errorf("after recovery: %v", err)
	}
}
