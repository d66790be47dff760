package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/managed"
	"github.com/tenantops/identity-operator/internal/reconcile"
	"github.com/tenantops/identity-operator/internal/scopes"
)

const (
	indexProviderSecret = "spec.credentialsSecretRef.name"
	tenantRetry         = time.Minute
)

// EmailProviderReconciler keeps a tenant's email provider as declared. The
// platform never returns secret credentials, so the reconciler remembers a
// salted hash of what it sent and sends the credentials again when their
// Secret changes.
type EmailProviderReconciler struct {
	client.Client
	// Reader reads the credentials Secret (see contentReader).
	Reader         client.Reader
	Access         *TenantAccess
	Clock          clock.PassiveClock
	Recorder       record.EventRecorder
	Summarizer     reconcile.Summarizer
	ResyncInterval time.Duration
	// Shard makes sure no other operator instance writes what this one does
	// (internal/shard).
	Shard reconcile.Ownership
	// Remote creates, adopts, updates and deletes the provider by the
	// ownership rule (internal/managed).
	Remote *managed.Step
}

// Reconcile runs one pass for an EmailProvider.
func (r *EmailProviderReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return reconcile.Pass(ctx, r.Client, r.Summarizer, req, &identityv1alpha1.EmailProvider{}, reconcile.Steps[*identityv1alpha1.EmailProvider]{
		Apply:  r.reconcileProvider,
		Delete: r.reconcileDelete,
		Shard:  r.Shard,
	})
}

// reconcileProvider creates the provider, adopts it, or updates what
// differs from the spec (internal/managed): the fields the platform returns
// are compared, the secret ones by their hash. Under managementPolicy Plan
// or Observe it reads the provider and reports what Apply would send.
func (r *EmailProviderReconciler) reconcileProvider(ctx context.Context, provider *identityv1alpha1.EmailProvider) (reconcile.Success, error) {
	tenant, err := getTenant(ctx, r.Client, provider.Namespace, provider.Spec.TenantRef.Name, tenantRetry)
	if err != nil {
		return reconcile.Success{}, err
	}
	if err := r.checkOnlyProvider(ctx, provider); err != nil {
		return reconcile.Success{}, err
	}
	credentials, err := r.credentials(ctx, provider)
	if err != nil {
		return reconcile.Success{}, err
	}
	settings, err := providerSettings(provider)
	if err != nil {
		return reconcile.Success{}, err
	}
	api, err := r.Access.ClientFor(ctx, tenant)
	if err != nil {
		return reconcile.Success{}, err
	}
	if err := checkGrant(ctx, api, provider, tenant, scopes.ForEmailProvider(provider)); err != nil {
		return reconcile.Success{}, err
	}
	remote := &remoteProvider{api: api, tenant: tenant, p: provider, credentials: credentials, settings: settings,
		hash: hashOf(provider.UID, credentials), enabled: ptr.Deref(provider.Spec.Enabled, true)}
	provider.Status.Ownership = providerOwnership(provider)
	policy := provider.EffectiveManagementPolicy()
	outcome, err := r.Remote.Manage(ctx, provider, policy, &provider.Status.Ownership, remote)
	if err != nil {
		return reconcile.Success{}, err
	}
	if !policy.Writes() {
		// The provider as the platform holds it, not as declared.
		provider.Status.Provider, provider.Status.Enabled = "", nil
		if remote.current != nil {
			provider.Status.Provider = identityv1alpha1.EmailProviderName(remote.current.Name)
			provider.Status.Enabled = ptr.To(remote.current.Enabled)
		}
		return managed.Report(provider, &provider.Status.Plan, outcome.Plan, remote.Describe(), r.ResyncInterval)
	}
	managed.Clear(provider, &provider.Status.Plan)
	provider.Status.Provider = provider.Spec.Provider
	provider.Status.Enabled = ptr.To(remote.enabled)
	provider.Status.AppliedCredentialsHash = remote.hash
	provider.Status.LastSyncTime = reconcile.SyncTime(provider.Status.LastSyncTime, r.Clock.Now(), outcome.Wrote, r.ResyncInterval)
	return reconcile.Success{Reason: identityv1alpha1.ReasonProviderSynced, RequeueAfter: r.ResyncInterval,
		Message: fmt.Sprintf("%s sends email through %s", provider.Spec.TenantRef.Name, provider.Spec.Provider)}, nil
}

// remoteProvider is the tenant's email provider, for the shared step. A
// tenant has one, with no id: the one there is the one status records once
// status.ownership is set.
type remoteProvider struct {
	api         identity.Client
	tenant      *identityv1alpha1.Tenant
	p           *identityv1alpha1.EmailProvider
	credentials identity.EmailCredentials
	settings    map[string]json.RawMessage
	hash        string
	enabled     bool
	// current is what Observe read (nil: no provider); update is what it
	// found to differ.
	current *identity.EmailProvider
	update  identity.EmailProviderUpdate
}

func (rp *remoteProvider) Observe(ctx context.Context) (managed.Observation, error) {
	current, err := rp.api.GetEmailProvider(ctx)
	switch {
	case errors.Is(err, identity.ErrNotFound):
		return managed.Observation{}, nil
	case err != nil:
		return managed.Observation{}, classify(rp.tenant, "reading the email provider", err)
	}
	update, differs := providerDiff(rp.p, current, rp.enabled, rp.settings)
	rp.current, rp.update = current, update
	return managed.Observation{Exists: true, Known: rp.p.Status.Ownership != "",
		UpToDate: !differs && rp.p.Status.AppliedCredentialsHash == rp.hash}, nil
}

// createBody is the POST Create sends and a plan renders.
func (rp *remoteProvider) createBody() identity.EmailProviderCreate {
	return identity.EmailProviderCreate{
		Name: string(rp.p.Spec.Provider), Enabled: ptr.To(rp.enabled), DefaultFromAddress: rp.p.Spec.DefaultFromAddress,
		Credentials: rp.credentials, Settings: rp.settings,
	}
}

// updateBody is the PATCH Update sends and a plan renders. Credentials go
// with every update: a changed provider name needs them, and sending them
// again is how a rotated Secret arrives.
func (rp *remoteProvider) updateBody() identity.EmailProviderUpdate {
	update := rp.update
	update.Credentials = &rp.credentials
	return update
}

func (rp *remoteProvider) Create(ctx context.Context) error {
	_, err := rp.api.CreateEmailProvider(ctx, rp.createBody())
	if err != nil {
		return classify(rp.tenant, "creating the email provider", err)
	}
	return nil
}

func (rp *remoteProvider) Update(ctx context.Context) error {
	if _, err := rp.api.UpdateEmailProvider(ctx, rp.updateBody()); err != nil {
		return classify(rp.tenant, "updating the email provider", err)
	}
	return nil
}

func (rp *remoteProvider) Describe() string { return describeProvider(rp.tenant.Spec.Domain, rp.p) }

// Plan renders the body Create or Update would send. The secret
// credentials show only whether they changed since last sent.
func (rp *remoteProvider) Plan(exists bool) []identityv1alpha1.PlannedChange {
	state := identityv1alpha1.SecretChanged
	if rp.p.Status.AppliedCredentialsHash == rp.hash {
		state = identityv1alpha1.SecretUnchanged
	}
	secrets := map[string]identityv1alpha1.SecretChange{}
	for _, key := range identityv1alpha1.SecretCredentialKeys[rp.p.Spec.Provider] {
		secrets["credentials."+key] = state
	}
	body := managed.Body{Expand: []string{"credentials"}, Secrets: secrets}
	if exists {
		body.Value, body.Current = rp.updateBody(), rp.current
	} else {
		body.Value = rp.createBody()
	}
	return managed.Render(body)
}

func describeProvider(domain string, p *identityv1alpha1.EmailProvider) string {
	if domain == "" {
		return fmt.Sprintf("the email provider of Tenant %s", p.Spec.TenantRef.Name)
	}
	return fmt.Sprintf("the email provider of %s", domain)
}

// providerOwnership is status.ownership, inferred for an object written
// before the field existed: an applied hash means the operator wrote the
// provider.
func providerOwnership(p *identityv1alpha1.EmailProvider) identityv1alpha1.RemoteOwnership {
	if p.Status.Ownership == "" && p.Status.AppliedCredentialsHash != "" {
		return identityv1alpha1.OwnershipAdoptedWritten
	}
	return p.Status.Ownership
}

// providerDiff keeps what differs between the spec and the provider as the
// platform returns it (secret credentials are never returned).
func providerDiff(p *identityv1alpha1.EmailProvider, current *identity.EmailProvider, enabled bool, settings map[string]json.RawMessage) (identity.EmailProviderUpdate, bool) {
	var update identity.EmailProviderUpdate
	differs := false
	if current.Name != string(p.Spec.Provider) {
		update.Name, differs = ptr.To(string(p.Spec.Provider)), true
	}
	if current.Enabled != enabled {
		update.Enabled, differs = ptr.To(enabled), true
	}
	if current.DefaultFromAddress != p.Spec.DefaultFromAddress {
		update.DefaultFromAddress, differs = ptr.To(p.Spec.DefaultFromAddress), true
	}
	if !jsonEqual(publicCredentials(p), publicCredentials(nil, current.Credentials)) {
		differs = true
	}
	if settings != nil && !jsonEqual(settings, current.Settings) {
		update.Settings, differs = &settings, true
	}
	return update, differs
}

// publicCredentials is the part of the credentials the platform returns:
// from the spec (p), or from the platform's answer.
func publicCredentials(p *identityv1alpha1.EmailProvider, returned ...identity.EmailCredentials) identity.EmailCredentials {
	if p == nil {
		c := returned[0]
		return identity.EmailCredentials{Region: c.Region, Domain: c.Domain, SMTPHost: c.SMTPHost, SMTPPort: c.SMTPPort,
			SMTPUser: c.SMTPUser, TenantID: c.TenantID, ClientID: c.ClientID}
	}
	var c identity.EmailCredentials
	s := p.Spec
	switch {
	case s.SMTP != nil:
		c.SMTPHost, c.SMTPPort, c.SMTPUser = s.SMTP.Host, int(s.SMTP.Port), s.SMTP.User
	case s.SES != nil:
		c.Region = s.SES.Region
	case s.Mailgun != nil:
		c.Domain, c.Region = s.Mailgun.Domain, s.Mailgun.Region
	case s.SparkPost != nil:
		c.Region = s.SparkPost.Region
	case s.MS365 != nil:
		c.TenantID, c.ClientID = s.MS365.TenantID, s.MS365.ClientID
	}
	return c
}

// credentials assembles the provider's credentials from the spec and its
// Secret, checking the Secret has every key the provider needs before any
// call is made.
func (r *EmailProviderReconciler) credentials(ctx context.Context, p *identityv1alpha1.EmailProvider) (identity.EmailCredentials, error) {
	c := publicCredentials(p)
	required := identityv1alpha1.SecretCredentialKeys[p.Spec.Provider]
	if len(required) == 0 || p.Spec.CredentialsSecretRef == nil {
		return c, nil
	}
	name := p.Spec.CredentialsSecretRef.Name
	secret := &corev1.Secret{}
	if err := r.Reader.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return c, reconcile.Stalling(identityv1alpha1.ReasonCredentialsSecretNotFound,
				"Secret %q (spec.credentialsSecretRef) not found in namespace %q: provider %s needs the keys %v", name, p.Namespace, p.Spec.Provider, required)
		}
		return c, err
	}
	var missing []string
	for _, key := range required {
		if len(secret.Data[key]) == 0 {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return c, reconcile.Stalling(identityv1alpha1.ReasonCredentialsSecretInvalid,
			"Secret %q lacks the keys %v that provider %s needs", name, missing, p.Spec.Provider)
	}
	get := func(key string) string { return string(secret.Data[key]) }
	switch p.Spec.Provider {
	case identityv1alpha1.ProviderMandrill, identityv1alpha1.ProviderSendGrid, identityv1alpha1.ProviderSparkPost, identityv1alpha1.ProviderMailgun:
		c.APIKey = get("api_key")
	case identityv1alpha1.ProviderSES:
		c.AccessKeyID, c.SecretAccessKey = get("accessKeyId"), get("secretAccessKey")
	case identityv1alpha1.ProviderSMTP:
		c.SMTPPass = get("smtp_pass")
	case identityv1alpha1.ProviderAzureCS:
		c.ConnectionString = get("connectionString")
	case identityv1alpha1.ProviderMS365:
		c.ClientSecret = get("clientSecret")
	}
	return c, nil
}

// providerSettings decodes spec.settings (nil when unset).
func providerSettings(p *identityv1alpha1.EmailProvider) (map[string]json.RawMessage, error) {
	if p.Spec.Settings == nil || len(p.Spec.Settings.Raw) == 0 {
		return nil, nil
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(p.Spec.Settings.Raw, &out); err != nil {
		return nil, reconcile.Stalling(identityv1alpha1.ReasonInvalidSettings, "spec.settings must be a JSON object: %v", err)
	}
	return out, nil
}

// checkOnlyProvider refuses to manage a tenant's provider that another
// EmailProvider already manages: a tenant has one provider, and two objects
// writing it would fight. The one that has already applied it keeps it;
// between two that have not (or both have, after a race), the older wins,
// then the first by name.
func (r *EmailProviderReconciler) checkOnlyProvider(ctx context.Context, p *identityv1alpha1.EmailProvider) error {
	var all identityv1alpha1.EmailProviderList
	if err := r.List(ctx, &all, client.InNamespace(p.Namespace), client.MatchingFields{indexTenantRef: p.Spec.TenantRef.Name}); err != nil {
		return err
	}
	for i := range all.Items {
		other := &all.Items[i]
		if other.UID == p.UID || !other.DeletionTimestamp.IsZero() {
			continue
		}
		incumbent, otherIncumbent := p.Status.AppliedCredentialsHash != "", other.Status.AppliedCredentialsHash != ""
		older := other.CreationTimestamp.Before(&p.CreationTimestamp) ||
			(other.CreationTimestamp.Equal(&p.CreationTimestamp) && other.Name < p.Name)
		if (otherIncumbent && !incumbent) || (otherIncumbent == incumbent && older) {
			return reconcile.Stalling(identityv1alpha1.ReasonDuplicateEmailProvider,
				"EmailProvider %q already manages the email provider of Tenant %q, and a tenant has one: delete one of the two",
				other.Name, p.Spec.TenantRef.Name)
		}
	}
	return nil
}

// reconcileDelete removes the remote provider for deletionPolicy Delete
// when the operator owns it (status.ownership: created, or adopted and
// written), and lets the object go once that succeeded; for Orphan, or a
// provider it does not own, at once. A provider that another EmailProvider
// writes now is left to that one.
func (r *EmailProviderReconciler) reconcileDelete(ctx context.Context, p *identityv1alpha1.EmailProvider) error {
	policy := p.Spec.DeletionPolicy
	if policy == "" {
		policy = identityv1alpha1.DeletionPolicyDelete
	}
	ownership := providerOwnership(p)
	if policy == identityv1alpha1.DeletionPolicyDelete && ownership.Deletable() && p.EffectiveManagementPolicy().Writes() {
		successor, err := r.successor(ctx, p)
		if err != nil {
			return err
		}
		if successor != "" {
			r.Recorder.Eventf(p, corev1.EventTypeNormal, identityv1alpha1.EventReasonRemoteObjectLeft,
				"left %s in place although deletionPolicy is Delete: EmailProvider %q manages it now", describeProvider("", p), successor)
			ownership = ""
		}
	}
	err := r.Remote.Delete(ctx, p, policy, ownership, describeProvider("", p), func(ctx context.Context) error {
		tenant, err := getTenant(ctx, r.Client, p.Namespace, p.Spec.TenantRef.Name, tenantRetry)
		if err != nil {
			return err
		}
		api, err := r.Access.ClientFor(ctx, tenant)
		if err != nil {
			return err
		}
		if err := api.DeleteEmailProvider(ctx); err != nil {
			return classify(tenant, "deleting the email provider", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return reconcile.RemoveFinalizer(ctx, r.Client, p, identityv1alpha1.Finalizer)
}

// successor names another EmailProvider of the same Tenant, not being
// deleted, that has written the provider since: the provider is its now.
// An error (the cache could not be read) is returned, never taken for "none".
func (r *EmailProviderReconciler) successor(ctx context.Context, p *identityv1alpha1.EmailProvider) (string, error) {
	var all identityv1alpha1.EmailProviderList
	if err := r.List(ctx, &all, client.InNamespace(p.Namespace), client.MatchingFields{indexTenantRef: p.Spec.TenantRef.Name}); err != nil {
		return "", err
	}
	for i := range all.Items {
		other := &all.Items[i]
		if other.UID != p.UID && other.DeletionTimestamp.IsZero() && providerOwnership(other) != "" {
			return other.Name, nil
		}
	}
	return "", nil
}

// SetupWithManager registers the reconciler; it watches its Tenants (to
// start once one appears) and its credentials Secrets (metadata only).
func (r *EmailProviderReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &identityv1alpha1.EmailProvider{}, indexProviderSecret, func(obj client.Object) []string {
		if ref := obj.(*identityv1alpha1.EmailProvider).Spec.CredentialsSecretRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).WithOptions(controllerOptions()).
		For(&identityv1alpha1.EmailProvider{}, builder.WithPredicates(reconcile.SpecChanged())).
		Watches(&identityv1alpha1.Tenant{}, handler.EnqueueRequestsFromMapFunc(indexedBy(r.Client, &identityv1alpha1.EmailProviderList{}, indexTenantRef)), builder.WithPredicates(reconcile.ReadinessChanged())).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(indexedBy(r.Client, &identityv1alpha1.EmailProviderList{}, indexProviderSecret)), builder.OnlyMetadata).
		WatchesRawSource(tenantRecovered(r.Access, mgr.GetClient(), &identityv1alpha1.EmailProviderList{})).
		Complete(r)
}
