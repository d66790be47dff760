// Package testenv starts a real control plane (kube-apiserver and etcd, via
// envtest) with the project's CRDs installed, for tests and for `make run`.
//
// The binaries come from KUBEBUILDER_ASSETS when it is set, and otherwise from
// hack/envtest.sh, which builds them from the Go module proxy once and caches
// them under bin/. So `go test ./...` works without any setup beyond Go.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// Env is a running control plane with the CRDs installed.
type Env struct {
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Client is a controller-runtime client with the project's scheme.
	Client client.Client
	// Scheme knows the built-in kinds and the project's kinds.
	Scheme *runtime.Scheme

	env *envtest.Environment
	// certDir is the API server's fixed certificate directory when it can
	// be restarted, removed by Stop.
	certDir string
}

// Options change how the control plane starts.
type Options struct {
	// RestartableAPIServer keeps the API server's certificates in a fixed
	// directory so that RestartAPIServer brings it back with the same
	// address, CA and users: clients keep working across the restart.
	RestartableAPIServer bool
}

// Start brings up kube-apiserver and etcd and installs the CRDs from
// config/crd/bases. Call Stop when done.
func Start() (*Env, error) { return StartWith(Options{}) }

// StartWith is Start with options.
func StartWith(opts Options) (*Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := Assets(root)
	if err != nil {
		return nil, err
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := identityv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}

	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	var certDir string
	if opts.RestartableAPIServer {
		// envtest forgets a directory it made itself when the API server
		// stops, and a new one means a new CA; a directory of our own keeps.
		if certDir, err = os.MkdirTemp("", "envtest-apiserver-"); err != nil {
			return nil, err
		}
		env.ControlPlane.APIServer = &envtest.APIServer{CertDir: certDir}
	}
	cfg, err := env.Start()
	if err != nil {
		if certDir != "" {
			_ = os.RemoveAll(certDir)
		}
		return nil, fmt.Errorf("starting the envtest control plane from %s: %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, env: env, certDir: certDir}, nil
}

// Stop shuts the control plane down.
func (e *Env) Stop() error {
	err := e.env.Stop()
	if e.certDir != "" {
		err = errors.Join(err, os.RemoveAll(e.certDir))
	}
	return err
}

// RestartAPIServer stops kube-apiserver (killing it when it does not stop
// within its StopTimeout), waits down, and starts it again on
// the same address with the same certificates; etcd keeps running, so no
// object is lost. It needs Options.RestartableAPIServer.
func (e *Env) RestartAPIServer(down time.Duration) error {
	if e.certDir == "" {
		return errors.New("testenv: the API server was not started restartable")
	}
	apiServer := e.env.ControlPlane.APIServer
	// SIGTERM, then SIGKILL after StopTimeout: either way it is gone (a
	// loaded API server may take longer than envtest's 20 s to drain).
	_ = apiServer.Stop()
	time.Sleep(down)
	if err := apiServer.Start(); err != nil {
		return fmt.Errorf("starting kube-apiserver again: %w", err)
	}
	return nil
}

// Assets returns the directory holding kube-apiserver and etcd:
// KUBEBUILDER_ASSETS when set, otherwise what hack/envtest.sh builds or finds.
func Assets(root string) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	cmd := exec.Command(filepath.Join(root, "hack", "envtest.sh"))
	cmd.Stderr = os.Stderr // build progress, shown the first time only
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/envtest.sh could not provide kube-apiserver and etcd: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// RepoRoot finds the module root by walking up from the working directory
// to the directory holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// KubeConfig returns a kubeconfig for an administrator of the control plane,
// for kubectl and for an operator process started beside it.
func (e *Env) KubeConfig() ([]byte, error) {
	user, err := e.env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	return user.KubeConfig()
}
