// Package crd_test proves the CRDs as a user meets them: through a real
// kube-apiserver, which accepts every sample, refuses every manifest of the
// invalid corpus with a message naming the field, and prints the columns a
// person reads with `kubectl get`.
package crd_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/tenantops/identity-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
	os.Exit(code)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return c
}
