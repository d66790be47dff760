package controllers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/reconcile"
)

// Keys of a Tenant's credentials Secret.
const (
	SecretKeyClientID     = "client_id"
	SecretKeyClientSecret = "client_secret"
)

// TenantAccess turns a Tenant into an identity client. It reads the
// credentials Secret and CA bundle in the Tenant's own namespace (through
// contentReader: only referenced Secrets are held, and re-read when they
// change), and takes the client from the shared pool so a tenant's token,
// connections and rate-limit budget outlive a reconcile.
type TenantAccess struct {
	// Reader reads the referenced Secrets and ConfigMaps.
	Reader client.Reader
	// Pool holds one identity client per tenant.
	Pool *identity.Pool
	// Wrap, when set, wraps every client handed out.
	Wrap func(identity.Client) identity.Client
}

// ClientFor returns the identity client of tenant, or a Stalling error that
// says what to fix in its Secret or ConfigMap.
func (a *TenantAccess) ClientFor(ctx context.Context, tenant *identityv1alpha1.Tenant) (identity.Client, error) {
	cfg, err := a.config(ctx, tenant)
	if err != nil {
		return nil, err
	}
	c, err := a.Pool.Get(cfg)
	if err != nil {
		return nil, reconcile.Stalling(identityv1alpha1.ReasonCABundleInvalid, "cannot set up the connection to %s: %v", tenant.Spec.Domain, err)
	}
	if a.Wrap != nil {
		return a.Wrap(c), nil
	}
	return c, nil
}

// Forget drops the tenant's client, once the Tenant is gone. The pool holds
// clients by endpoint (domain and dial address), so this needs neither the
// credentials Secret nor the CA bundle: both may be gone already (a
// namespace being deleted).
func (a *TenantAccess) Forget(tenant *identityv1alpha1.Tenant) {
	a.Pool.Forget(identity.Config{Domain: tenant.Spec.Domain, DialAddress: tenant.Spec.DialAddress})
}

func (a *TenantAccess) config(ctx context.Context, tenant *identityv1alpha1.Tenant) (identity.Config, error) {
	cfg := identity.Config{Domain: tenant.Spec.Domain, DialAddress: tenant.Spec.DialAddress}

	name := tenant.Spec.CredentialsSecretRef.Name
	secret := &corev1.Secret{}
	if err := a.Reader.Get(ctx, types.NamespacedName{Namespace: tenant.Namespace, Name: name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return cfg, reconcile.Stalling(identityv1alpha1.ReasonCredentialsSecretNotFound,
				"Secret %q not found in namespace %q: create it with the keys %s and %s of an application authorized for the Management API",
				name, tenant.Namespace, SecretKeyClientID, SecretKeyClientSecret)
		}
		return cfg, err
	}
	for _, key := range []string{SecretKeyClientID, SecretKeyClientSecret} {
		if len(secret.Data[key]) == 0 {
			return cfg, reconcile.Stalling(identityv1alpha1.ReasonCredentialsSecretInvalid,
				"Secret %q has no key %q (or it is empty): it needs %s and %s", name, key, SecretKeyClientID, SecretKeyClientSecret)
		}
	}
	cfg.ClientID = string(secret.Data[SecretKeyClientID])
	cfg.ClientSecret = string(secret.Data[SecretKeyClientSecret])

	if ref := tenant.Spec.CABundleRef; ref != nil {
		cm := &corev1.ConfigMap{}
		if err := a.Reader.Get(ctx, types.NamespacedName{Namespace: tenant.Namespace, Name: ref.Name}, cm); err != nil {
			if apierrors.IsNotFound(err) {
				return cfg, reconcile.Stalling(identityv1alpha1.ReasonCABundleNotFound,
					"ConfigMap %q (spec.caBundleRef) not found in namespace %q: create it with the PEM CA certificates under key %q",
					ref.Name, tenant.Namespace, ref.Key)
			}
			return cfg, err
		}
		pem := cm.Data[ref.Key]
		if pem == "" {
			return cfg, reconcile.Stalling(identityv1alpha1.ReasonCABundleInvalid, "ConfigMap %q has no key %q with PEM CA certificates", ref.Name, ref.Key)
		}
		cfg.CABundle = []byte(pem)
	}
	return cfg, nil
}

// classify turns an identity client error into what the reconciler should
// do: a person must act (Stalling), wait for the rate limit (Waiting), or
// retry with backoff (Transient). what names the step for the message.
func classify(tenant *identityv1alpha1.Tenant, what string, err error) error {
	var forbidden *identity.ForbiddenFlagError
	var apiErr *identity.APIError
	switch {
	case errors.As(err, &forbidden):
		return reconcile.Stalling(identityv1alpha1.ReasonFlagRefused,
			"the platform refuses to set flag %q on %s: remove it from spec.flags (or from the migration that sets it)", forbidden.Flag, tenant.Spec.Domain)
	case errors.Is(err, identity.ErrUnauthorized):
		return reconcile.Stalling(identityv1alpha1.ReasonCredentialsRejected,
			"%s refused the credentials in Secret %q: check %s and %s, and that the application is authorized for the Management API",
			tenant.Spec.Domain, tenant.Spec.CredentialsSecretRef.Name, SecretKeyClientID, SecretKeyClientSecret)
	case errors.Is(err, identity.ErrInsufficientScope):
		return reconcile.Stalling(identityv1alpha1.ReasonInsufficientScope, "%s: %v: grant the application the scope the platform names", what, err)
	case errors.Is(err, identity.ErrRateLimited):
		wait := rateLimitRetry
		if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
			wait = apiErr.RetryAfter
		}
		return reconcile.Waiting(identityv1alpha1.ReasonRateLimited, wait, "%s: %s is rate limited; trying again in %s", what, tenant.Spec.Domain, wait)
	case errors.Is(err, identity.ErrInvalid):
		return reconcile.Stalling(identityv1alpha1.ReasonPlatformRefused, "%s: %v", what, err)
	case errors.Is(err, identity.ErrTenantDown):
		return tenantDown(tenant, what, err)
	case errors.Is(err, identity.ErrNotFound):
		// Gone between the read and the write, or a path the tenant does
		// not serve: said as such, and retried.
		return reconcile.Transient(identityv1alpha1.ReasonRemoteNotFound, fmt.Errorf("%s: %w", what, err))
	case errors.Is(err, identity.ErrConflict):
		return reconcile.Transient(identityv1alpha1.ReasonRemoteConflict, fmt.Errorf("%s: %w", what, err))
	case errors.Is(err, identity.ErrUnavailable):
		return reconcile.Transient(identityv1alpha1.ReasonTenantUnreachable, fmt.Errorf("%s: %w", what, err))
	default:
		// Not an answer of the platform (a cancelled pass, say): retried,
		// with the summary's own reason.
		return fmt.Errorf("%s: %w", what, err)
	}
}
