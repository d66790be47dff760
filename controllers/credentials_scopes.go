package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/reconcile"
	"github.com/tenantops/identity-operator/internal/scopes"
)

// checkGrant is the step before an object's first call to its tenant: it
// compares the scopes the declared spec needs (internal/scopes) with those
// the tenant granted the credentials' token, which come with the token and
// cost no request of their own. It sets CredentialsValid:
//   - True (ScopesGranted) when every scope is granted, or
//     (ScopesNotReported) when the platform did not say which were;
//   - False (InsufficientScope), with a Stalling error naming the missing
//     scopes, what each is for and what the token was granted, when some
//     are missing: no call is made, so no request that would fail is sent.
//     The token is dropped, so that the next pass (the stalled retry, or a
//     change of the credentials Secret) sees a grant fixed meanwhile;
//   - False (CredentialsRejected) when the credentials get no token at all.
func checkGrant(ctx context.Context, api identity.Client, obj reconcile.Object, tenant *identityv1alpha1.Tenant, needs scopes.Needs) error {
	set := func(status metav1.ConditionStatus, reason, msg string) {
		conditions := obj.GetConditions()
		meta.SetStatusCondition(&conditions, metav1.Condition{Type: identityv1alpha1.ConditionCredentialsValid, Status: status,
			Reason: reason, Message: msg, ObservedGeneration: obj.GetGeneration()})
		obj.SetConditions(conditions)
	}
	grant, err := api.GrantedScopes(ctx)
	if err != nil {
		err = classify(tenant, "getting a token", err)
		var stalling *reconcile.StallingError
		if errors.As(err, &stalling) && stalling.Reason == identityv1alpha1.ReasonCredentialsRejected {
			set(metav1.ConditionFalse, stalling.Reason, stalling.Message)
		}
		return err
	}
	secret := tenant.Spec.CredentialsSecretRef.Name
	if !grant.Known {
		set(metav1.ConditionTrue, identityv1alpha1.ReasonScopesNotReported, fmt.Sprintf(
			"%s did not say which scopes the credentials in Secret %q are granted: they are checked by the calls themselves", tenant.Spec.Domain, secret))
		return nil
	}
	missing := needs.Only(grant.Missing(needs.Scopes()))
	if len(missing) == 0 {
		set(metav1.ConditionTrue, identityv1alpha1.ReasonScopesGranted, fmt.Sprintf(
			"the credentials in Secret %q are granted every scope the spec needs: %s", secret, strings.Join(needs.Scopes(), " ")))
		return nil
	}
	api.RenewGrant(grant)
	granted := "no scope"
	if len(grant.Scopes) > 0 {
		granted = strings.Join(grant.Scopes, " ")
	}
	msg := fmt.Sprintf("the credentials in Secret %q lack %s; %s granted their token: %s. Add the missing scopes to the application's grant for the Management API of %s; nothing is sent until then",
		secret, missing, tenant.Spec.Domain, granted, tenant.Spec.Domain)
	set(metav1.ConditionFalse, identityv1alpha1.ReasonInsufficientScope, msg)
	return reconcile.Stalling(identityv1alpha1.ReasonInsufficientScope, "%s", msg)
}
