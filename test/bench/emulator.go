package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenantops/identity-operator/test/emulator/server"
)

// emulatorThroughput measures what the emulator serves with rate limits off:
// GET /api/v2/tenants/settings (the call the operator makes most) from 16
// concurrent clients spread over 100 tenants, bounded at 20,000 requests or
// 30 s. The benchmark's peak request rate is far below it.
func emulatorThroughput(ctx context.Context) error {
	const tenants, workers, total, limit = 100, 16, 20000, 30 * time.Second
	dir, err := os.MkdirTemp("", "identity-bench-emulator-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "emulator")})
	if err != nil {
		return err
	}
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(srv.CACertPEM())
	addr := srv.Addr()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	httpClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
	}}
	var ts []tenantToken
	for i := 0; i < tenants; i++ {
		domain := fmt.Sprintf("t%03d.throughput.identity.test", i)
		creds, err := srv.CreateTenant(domain, nil)
		if err != nil {
			return err
		}
		token, err := fetchToken(httpClient, creds)
		if err != nil {
			return err
		}
		ts = append(ts, tenantToken{domain, token})
	}
	get := func(t tenantToken) *http.Request {
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+t.domain+"/api/v2/tenants/settings", nil)
		return req
	}
	patch := func(t tenantToken) *http.Request {
		req, _ := http.NewRequestWithContext(ctx, "PATCH", "https://"+t.domain+"/api/v2/tenants/settings",
			strings.NewReader(`{"flags":{"enable_apis_section":true,"no_disclose_enterprise_connections":true}}`))
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	for _, phase := range []struct {
		what  string
		total int
		req   func(tenantToken) *http.Request
	}{{"GET /api/v2/tenants/settings", total, get}, {"PATCH /api/v2/tenants/settings (2 flags)", total / 4, patch}} {
		done, failed, elapsed := load(ctx, httpClient, ts, workers, phase.total, limit, phase.req)
		fmt.Printf("emulator throughput: %d %s over %d tenants from %d clients in %s = %.0f requests/s, %d failed (rate limits off; HTTPS on loopback; client and emulator share the machine)\n",
			done, phase.what, tenants, workers, elapsed.Round(time.Millisecond), float64(done)/elapsed.Seconds(), failed)
	}
	return nil
}

func fetchToken(c *http.Client, creds server.Credentials) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {creds.ClientID},
		"client_secret": {creds.ClientSecret}, "audience": {creds.Audience}}
	resp, err := c.Post("https://"+creds.Domain+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token for %s: status %d", creds.Domain, resp.StatusCode)
	}
	return out.AccessToken, nil
}

type tenantToken struct{ domain, token string }

// load sends up to total requests from workers goroutines, round-robin over
// the tenants, for at most limit.
func load(ctx context.Context, c *http.Client, ts []tenantToken, workers, total int, limit time.Duration, build func(tenantToken) *http.Request) (done, failed int64, elapsed time.Duration) {
	var (
		next, bad atomic.Int64
		wg        sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Since(start) < limit {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				t := ts[int(i)%len(ts)]
				req := build(t)
				req.Header.Set("Authorization", "Bearer "+t.token)
				resp, err := c.Do(req)
				if err != nil {
					bad.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return min(next.Load(), int64(total)), bad.Load(), time.Since(start)
}
