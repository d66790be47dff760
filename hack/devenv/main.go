// Command devenv is what `make run` runs.
//
// With a Kubernetes context configured (KUBECONFIG or ~/.kube/config), it
// runs the operator against that cluster. With none (or with -embedded), it
// brings up the embedded default on loopback: a control plane (kube-apiserver
// and etcd, built by hack/envtest.sh), the identity API emulator with the
// tenants of the samples, a legacy user service and an SMTP sink for them,
// the CRDs, the samples, and then the operator in the foreground. Ctrl-C
// stops everything it started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	embedded := flag.Bool("embedded", false, "use the embedded default even when a Kubernetes context is configured")
	flag.Parse()
	if err := run(*embedded, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "make run:", err)
		os.Exit(1)
	}
}

func run(embedded bool, operatorArgs []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	operator, err := buildOperator(root)
	if err != nil {
		return err
	}

	if !embedded {
		if current, ok := configuredContext(); ok {
			fmt.Printf(">> running the operator against your cluster (context %q). Install the CRDs first with: kubectl apply -k config/crd\n", current)
			return runOperator(ctx, operator, nil, append([]string{"--zap-devel"}, operatorArgs...))
		}
	}
	dev, err := startEmbedded(ctx, root)
	if err != nil {
		return err
	}
	defer dev.stop()
	fmt.Printf(`
>> the embedded default is up:
   control plane   %s
   identity API    https://%s (emulator; data in .run/emulator, CA in .run/emulator/ca.crt)
   tenants         %s
   legacy users    http://%s (Basic Auth; users alice, bob, carol @acme.example)
   SMTP sink       %s (mail is printed here)
   In another terminal:
     export KUBECONFIG=%s
     kubectl get identity
>> starting the operator (Ctrl-C stops everything)
`, dev.apiServer, dev.emulatorAddr, dev.domains, dev.legacyAddr, dev.smtpAddr, dev.kubeconfig)

	args := append([]string{"--zap-devel", "--resync-interval=1m", "--metrics-bind-address=127.0.0.1:8080",
		"--health-probe-bind-address=127.0.0.1:8081", "--smtp-relay=" + dev.smtpAddr, "--smtp-from=identity-operator@platform.example"}, operatorArgs...)
	err = runOperator(ctx, operator, []string{"KUBECONFIG=" + dev.kubeconfig}, args)
	if ctx.Err() != nil {
		fmt.Println("\n>> stopping the operator, the emulator and the control plane")
		return nil
	}
	return err
}

// configuredContext reports the current context of the user's kubeconfig.
func configuredContext() (string, bool) {
	cfg, err := clientcmd.NewDefaultClientConfigLoadingRules().Load()
	if err != nil || cfg.CurrentContext == "" {
		return "", false
	}
	if _, ok := cfg.Contexts[cfg.CurrentContext]; !ok {
		return "", false
	}
	return cfg.CurrentContext, true
}

// buildOperator builds the operator binary into bin/.
func buildOperator(root string) (string, error) {
	out := filepath.Join(root, "bin", "identity-operator")
	fmt.Println(">> building the operator")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the operator: %w", err)
	}
	return out, nil
}

// runOperator runs the operator in the foreground until ctx ends, then
// stops it with SIGTERM (the manager shuts down cleanly on it).
func runOperator(ctx context.Context, binary string, env, args []string) error {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// Its own process group: the terminal's Ctrl-C reaches us, and we stop
	// the operator in order, after which the servers it talks to go.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("the operator stopped: %w", err)
		}
		return errors.New("the operator stopped")
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-done
		return nil
	}
}
