package identity

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Config is what a Tenant gives the client: where the tenant is, how to reach and trust
// it, and its credentials.
type Config struct {
	// Domain is the tenant's domain ("acme.eu.auth0.com"), optionally with a port. It is
	// the Host, the TLS server name, the name the certificate must carry, and the base of
	// the token audience (https://DOMAIN/api/v2/).
	Domain string
	// DialAddress, when set ("host:port"), is where connections go instead of Domain's
	// address, like curl's --resolve: Host, SNI and certificate checks still use Domain.
	DialAddress string
	// CABundle, when set, is PEM certificates trusted in addition to the system roots.
	CABundle []byte
	// ClientID is the machine-to-machine application's id.
	ClientID string
	// ClientSecret is the application's secret. It is only ever sent to /oauth/token.
	ClientSecret string
}

// String describes the tenant without the secret, so a Config printed by mistake leaks
// nothing.
func (c Config) String() string {
	return fmt.Sprintf("identity.Config{Domain: %q, DialAddress: %q, ClientID: %q, CABundle: %d bytes}",
		c.Domain, c.DialAddress, c.ClientID, len(c.CABundle))
}

// GoString redacts like String.
func (c Config) GoString() string { return c.String() }

// Fingerprint is a hash of everything in the Config, the secret included, so a caller can
// tell when credentials changed without keeping or comparing the secret itself.
func (c Config) Fingerprint() string {
	h := sha256.New()
	for _, part := range []string{c.Domain, c.DialAddress, string(c.CABundle), c.ClientID, c.ClientSecret} {
		// The length prefix keeps ("ab","c") and ("a","bc") apart.
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// endpointKey identifies where requests go, regardless of credentials: the rate limit
// belongs to the tenant, so every client of it shares one pacer.
func (c Config) endpointKey() string { return c.Domain + "\x00" + c.DialAddress }

func (c Config) validate() error {
	if c.Domain == "" {
		return errors.New("identity: config: domain is empty")
	}
	if strings.ContainsAny(c.Domain, "/?#@ ") {
		return fmt.Errorf("identity: config: domain %q must be a host name, optionally with a port, without scheme or path", c.Domain)
	}
	if c.DialAddress != "" {
		if _, _, err := net.SplitHostPort(c.DialAddress); err != nil {
			return fmt.Errorf("identity: config: dial address %q must be host:port: %w", c.DialAddress, err)
		}
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return errors.New("identity: config: client id and client secret are required")
	}
	return nil
}

// Options tunes the client. The zero value is what production uses.
type Options struct {
	// Clock is the time source for token expiry, pacing and backoff (default: real).
	Clock clock.Clock
	// MaxRetries bounds retries of 5xx answers and network errors (default 5).
	MaxRetries int
	// MaxRateLimitWaits bounds how many 429s one call waits out (default 10).
	MaxRateLimitWaits int
	// BackoffBase is the first backoff after a 5xx or network error (default 250ms).
	BackoffBase time.Duration
	// BackoffCap caps the backoff (default 10s).
	BackoffCap time.Duration
	// RequestTimeout bounds one HTTP attempt when the context allows longer (default 30s).
	RequestTimeout time.Duration
	// Metrics receives the client's metrics (default: the shared DefaultMetrics,
	// registered on the controller-runtime registry).
	Metrics *Metrics
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 5
	}
	if o.MaxRateLimitWaits == 0 {
		o.MaxRateLimitWaits = 10
	}
	if o.BackoffBase == 0 {
		o.BackoffBase = 250 * time.Millisecond
	}
	if o.BackoffCap == 0 {
		o.BackoffCap = 10 * time.Second
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.Metrics == nil {
		o.Metrics = DefaultMetrics()
	}
	return o
}

// rootPools holds one trust pool per distinct CA bundle: tenants trusting the
// same bundle share it. Each pool is a copy of the system roots (about 35 KB
// of heap), so a pool per tenant cost 35 MB at 1,000 tenants; there are as
// many pools as distinct bundles, usually one or two. A pool is only read
// once built, which crypto/x509 allows from many goroutines.
var rootPools sync.Map // [sha256.Size]byte of the bundle -> *x509.CertPool

// rootPool returns the system roots plus the PEM certificates of bundle.
func rootPool(bundle []byte) (*x509.CertPool, error) {
	key := sha256.Sum256(bundle)
	if p, ok := rootPools.Load(key); ok {
		return p.(*x509.CertPool), nil
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if len(bundle) > 0 && !roots.AppendCertsFromPEM(bundle) {
		return nil, errors.New("identity: config: the CA bundle holds no PEM certificate")
	}
	p, _ := rootPools.LoadOrStore(key, roots)
	return p.(*x509.CertPool), nil
}

// newTransport builds the tenant's own connection pool: TLS verified against Domain
// (plus the CA bundle), and every connection dialed to DialAddress when one is set.
func newTransport(cfg Config) (*http.Transport, error) {
	roots, err := rootPool(cfg.CABundle)
	if err != nil {
		return nil, err
	}
	serverName := cfg.Domain
	if host, _, err := net.SplitHostPort(cfg.Domain); err == nil {
		serverName = host
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		// A dial address is private routing: a proxy would not know it.
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if cfg.DialAddress != "" {
				addr = cfg.DialAddress
			}
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{
			RootCAs:    roots,
			ServerName: serverName,
			MinVersion: tls.VersionTLS12,
		},
		ForceAttemptHTTP2: true,
		// One tenant's calls come in short bursts (a pass), minutes apart
		// (a resync): a connection idle for 30 s is closed rather than held
		// for the next burst. At 1,000 tenants the open connections (TLS
		// state, HTTP/2 buffers, a goroutine each) are most of the
		// operator's memory.
		MaxIdleConns:        16,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
		// The Management API's answers carry a handful of headers: a small
		// HPACK table each way serves them as well as the 4 KiB default.
		HTTP2:                 &http.HTTP2Config{MaxDecoderHeaderTableSize: 1024, MaxEncoderHeaderTableSize: 1024},
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	if cfg.DialAddress != "" {
		tr.Proxy = nil
	}
	return tr, nil
}
