package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantops/identity-operator/internal/testenv"
	"github.com/tenantops/identity-operator/test/emulator/server"
)

// The samples address these tenants at this emulator address.
const (
	emulatorListen = "127.0.0.1:8443"
	legacyListen   = "127.0.0.1:8444"
	smtpListen     = "127.0.0.1:2525"
	namespace      = "default"
)

// Their sandbox_version (the Node.js runtime of their scripts) is below the
// platform's current one, so that the runtime end-of-life samples have
// tenants to report: acme runs its database scripts on 18, globex is on 16.
var sampleTenants = []struct {
	name, domain string
	legacy       bool
	sandbox      string
}{
	{"acme", "acme.identity.test", true, "18"},
	{"globex", "globex.identity.test", true, "16"},
}

type embedded struct {
	env          *testenv.Env
	emulator     *server.Server
	servers      []io.Closer
	apiServer    string
	emulatorAddr string
	legacyAddr   string
	smtpAddr     string
	kubeconfig   string
	domains      string
}

func (e *embedded) stop() {
	for i := len(e.servers) - 1; i >= 0; i-- {
		_ = e.servers[i].Close()
	}
	if e.emulator != nil {
		_ = e.emulator.Close()
	}
	if e.env != nil {
		_ = e.env.Stop()
	}
}

func startEmbedded(ctx context.Context, root string) (_ *embedded, err error) {
	e := &embedded{}
	defer func() {
		if err != nil {
			e.stop()
		}
	}()
	runDir := filepath.Join(root, ".run")
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, err
	}

	fmt.Println(">> starting the control plane (the first run builds kube-apiserver and etcd: about 5 minutes on 2 cores)")
	if e.env, err = testenv.Start(); err != nil {
		return nil, err
	}
	e.apiServer = e.env.Config.Host
	kubeconfig, err := e.env.KubeConfig()
	if err != nil {
		return nil, err
	}
	e.kubeconfig = filepath.Join(runDir, "kubeconfig")
	if err := os.WriteFile(e.kubeconfig, kubeconfig, 0o600); err != nil {
		return nil, err
	}

	fmt.Println(">> starting the identity API emulator")
	e.emulator, err = server.New(server.Config{
		Listen: emulatorListen, DataDir: filepath.Join(runDir, "emulator"), RateLimit: server.DefaultRateLimit,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, fmt.Errorf("starting the emulator on %s (is another `make run` still running?): %w", emulatorListen, err)
	}
	e.emulatorAddr = e.emulator.Addr()
	secrets := map[string]map[string]string{}
	var domains []string
	for _, t := range sampleTenants {
		var settings map[string]any
		if t.legacy {
			settings = server.LegacySettings()
		}
		if t.sandbox != "" {
			if settings == nil {
				settings = map[string]any{}
			}
			settings["sandbox_version"] = t.sandbox
		}
		creds, err := e.emulator.CreateTenant(t.domain, settings)
		if errors.Is(err, server.ErrTenantExists) {
			creds, err = readCredentials(filepath.Join(runDir, "emulator", server.TenantsDir, t.domain+".json"))
		}
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t.domain, err)
		}
		secrets[t.name+"-credentials"] = map[string]string{"client_id": creds.ClientID, "client_secret": creds.ClientSecret}
		domains = append(domains, t.domain)
	}
	// The password-change Action of the samples (action_acme-password-change.yaml)
	// creates tickets with a machine-to-machine application of its own: a grant
	// for the Management API with create:user_tickets, and nothing else.
	m2m, err := e.emulator.MintClient(sampleTenants[0].domain, "Password change action", []string{"create:user_tickets"}, []string{"client_credentials"})
	if err != nil {
		return nil, fmt.Errorf("the password-change action's application: %w", err)
	}
	secrets["acme-password-change"] = map[string]string{"CLIENT_ID": m2m.ClientID, "CLIENT_SECRET": m2m.ClientSecret,
		"RESULT_URL": "https://app.acme.example/password-changed"}
	e.domains = strings.Join(domains, ", ")

	legacyPassword := randomHex(12)
	legacy, err := startLegacyService(legacyListen, "legacy-api", legacyPassword)
	if err != nil {
		return nil, err
	}
	e.servers = append(e.servers, legacy)
	e.legacyAddr = legacyListen
	secrets["legacy-users-config"] = map[string]string{"legacy_url": "http://" + legacyListen, "legacy_user": "legacy-api", "legacy_password": legacyPassword}

	sink, err := startSMTPSink(smtpListen, os.Stdout)
	if err != nil {
		return nil, err
	}
	e.servers = append(e.servers, sink)
	e.smtpAddr = smtpListen
	secrets["acme-smtp"] = map[string]string{"smtp_pass": randomHex(12)}

	fmt.Println(">> applying the emulator's CA, the credentials and the samples")
	c := e.env.Client
	for name, data := range secrets {
		if err := applyObject(ctx, c, secret(name, data)); err != nil {
			return nil, err
		}
	}
	if err := applyObject(ctx, c, configMap("identity-emulator-ca", map[string]string{"ca.crt": string(e.emulator.CACertPEM())})); err != nil {
		return nil, err
	}
	samples, err := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, path := range samples {
		if filepath.Base(path) == "kustomization.yaml" {
			continue
		}
		if err := applyFile(ctx, c, path); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return e, nil
}

func readCredentials(path string) (server.Credentials, error) {
	var creds server.Credentials
	data, err := os.ReadFile(path)
	if err != nil {
		return creds, err
	}
	return creds, json.Unmarshal(data, &creds)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func secret(name string, data map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": name, "namespace": namespace}, "stringData": toAny(data)}}
	return u
}

func configMap(name string, data map[string]string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": namespace}, "data": toAny(data)}}
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func applyFile(ctx context.Context, c client.Client, path string) error {
	objs, err := testenv.ReadManifests(path)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		if obj.GetKind() != "PlatformMigration" {
			obj.SetNamespace(namespace)
		}
		if err := applyObject(ctx, c, obj); err != nil {
			return err
		}
	}
	return nil
}

// applyObject creates obj, or leaves the one already there (a fresh control
// plane starts empty; this only matters for objects applied twice).
func applyObject(ctx context.Context, c client.Client, obj *unstructured.Unstructured) error {
	if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("%s %s: %w", obj.GetKind(), obj.GetName(), err)
	}
	return nil
}

// listenLoopback listens on addr, which must be a loopback address.
func listenLoopback(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s (is another `make run` still running?): %w", addr, err)
	}
	return ln, nil
}

type httpCloser struct{ srv *http.Server }

func (h httpCloser) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return h.srv.Shutdown(ctx)
}
