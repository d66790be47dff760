package helm_test

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/tenantops/identity-operator/controllers"
	"github.com/tenantops/identity-operator/internal/identity"
)

// setupControllers registers every controller as main.go does.
func setupControllers(mgr ctrl.Manager) error {
	return controllers.Setup(context.Background(), mgr, controllers.Options{Pool: identity.NewPool(identity.Options{})})
}
