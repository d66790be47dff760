package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/identity"
	"github.com/tenantops/identity-operator/internal/managed"
	"github.com/tenantops/identity-operator/internal/reconcile"
	"github.com/tenantops/identity-operator/internal/scopes"
)

// CustomDatabaseConnection condition types (the reasons are in api/v1alpha1).
const (
	// ConditionScriptsValid is False while the platform refuses one of the
	// scripts (a syntax error), and names it.
	ConditionScriptsValid = "ScriptsValid"
	// ConditionMigrationCompleted is True once login and getUser no longer
	// reach the legacy store.
	ConditionMigrationCompleted = "MigrationCompleted"

	indexScriptConfigMap     = "spec.scripts.configMapKeyRef.name"
	indexConfigurationSecret = "spec.configurationSecretRef.name"
	// indexConnectionName indexes CustomDatabaseConnections by
	// "<tenantRef.name>/<connectionName>": one writer per connection.
	indexConnectionName      = "spec.tenantRef.name+connectionName"
	defaultUserCountInterval = 10 * time.Minute
)

// Scripts that complete a migration: they find nobody, so the platform
// serves the users it migrated and nobody else, and never calls the legacy
// store again. The function signatures are the ones the platform calls.
const (
	completedLoginScript = `function login(email, password, callback) {
  // Migration completed by the identity-operator: every user who will ever
  // migrate has; the legacy store is no longer called.
  return callback(null, null);
}`
	completedGetUserScript = `function getByEmail(email, callback) {
  // Migration completed by the identity-operator: the legacy store is no
  // longer called.
  return callback(null, null);
}`
)

// databaseScript ties a script of the spec to its customScripts key.
type databaseScript struct {
	field string // spec.scripts.<field>
	key   string // options.customScripts.<key>
	get   func(*identityv1alpha1.DatabaseScripts) *identityv1alpha1.Script
}

var databaseScripts = []databaseScript{
	{"login", "login", func(s *identityv1alpha1.DatabaseScripts) *identityv1alpha1.Script { return &s.Login }},
	{"getUser", "get_user", func(s *identityv1alpha1.DatabaseScripts) *identityv1alpha1.Script { return &s.GetUser }},
	{"create", "create", func(s *identityv1alpha1.DatabaseScripts) *identityv1alpha1.Script { return s.Create }},
	{"verify", "verify", func(s *identityv1alpha1.DatabaseScripts) *identityv1alpha1.Script { return s.Verify }},
	{"changePassword", "change_password", func(s *identityv1alpha1.DatabaseScripts) *identityv1alpha1.Script { return s.ChangePassword }},
	{"delete", "delete", func(s *identityv1alpha1.DatabaseScripts) *identityv1alpha1.Script { return s.Delete }},
	{"changeEmail", "change_email", func(s *identityv1alpha1.DatabaseScripts) *identityv1alpha1.Script { return s.ChangeEmail }},
}

// Option keys the reconciler compares in a way of their own.
const (
	optionCustomScripts = "customScripts"
	optionConfiguration = "configuration"
)

// CustomDatabaseConnectionReconciler keeps a database connection backed by
// action scripts as declared, and reports how far its lazy migration has come.
//
// The platform replaces options whole on every PATCH and returns the
// configuration only as ciphertext, so every update sends the complete
// options with the plain configuration, merged into the options the platform
// holds that the spec does not manage. A salted hash of what was sent, in
// status.appliedHash, tells when the Secret or a ConfigMap changed; the
// managed options the platform returns are compared with the spec to find
// drift. Steady state is one GET per resync and no write; users are counted
// on the spec's own, slower cadence.
type CustomDatabaseConnectionReconciler struct {
	client.Client
	// Reader reads the referenced ConfigMaps and Secrets (see contentReader).
	Reader         client.Reader
	Access         *TenantAccess
	Clock          clock.PassiveClock
	Recorder       record.EventRecorder
	Summarizer     reconcile.Summarizer
	ResyncInterval time.Duration
	// Shard makes sure no other operator instance writes what this one does
	// (internal/shard).
	Shard reconcile.Ownership
	// Remote creates, adopts, updates and deletes the connection by the
	// ownership rule (internal/managed).
	Remote *managed.Step
}

// Reconcile runs one pass for a CustomDatabaseConnection.
func (r *CustomDatabaseConnectionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return reconcile.Pass(ctx, r.Client, r.Summarizer, req, &identityv1alpha1.CustomDatabaseConnection{},
		reconcile.Steps[*identityv1alpha1.CustomDatabaseConnection]{Apply: r.reconcileConnection, Delete: r.reconcileDelete, Shard: r.Shard})
}

// reconcileConnection creates, adopts or updates the connection, then
// counts its users when the cadence says so. It sets ScriptsValid whenever
// scripts were sent, and MigrationCompleted once completion is applied.
func (r *CustomDatabaseConnectionReconciler) reconcileConnection(ctx context.Context, conn *identityv1alpha1.CustomDatabaseConnection) (reconcile.Success, error) {
	if conn.Status.ConnectionID == "" {
		conn.Status.Phase = identityv1alpha1.ConnectionPending
	}
	tenant, err := getTenant(ctx, r.Client, conn.Namespace, conn.Spec.TenantRef.Name, tenantRetry)
	if err != nil {
		return reconcile.Success{}, err
	}
	if err := r.checkOnlyConnection(ctx, conn); err != nil {
		return reconcile.Success{}, err
	}
	// Everything the spec points at is read before any call, so a missing
	// ConfigMap or Secret costs the tenant's rate limit nothing.
	desired, err := r.desiredConnection(ctx, conn)
	if err != nil {
		return reconcile.Success{}, err
	}
	api, err := r.Access.ClientFor(ctx, tenant)
	if err != nil {
		return reconcile.Success{}, err
	}
	if err := checkGrant(ctx, api, conn, tenant, scopes.ForConnection(conn)); err != nil {
		return reconcile.Success{}, err
	}
	conn.Status.Ownership = connectionOwnership(conn)
	remote := &remoteConnection{r: r, api: api, tenant: tenant, conn: conn, desired: desired, hash: hashOf(conn.UID, desired),
		configurationHash: hashOf(conn.UID, desired.Options[optionConfiguration])}
	policy := conn.EffectiveManagementPolicy()
	outcome, err := r.Remote.Manage(ctx, conn, policy, &conn.Status.Ownership, remote)
	if err != nil {
		return reconcile.Success{}, err
	}
	if !policy.Writes() {
		return r.reportPlan(ctx, api, tenant, conn, remote, outcome.Plan)
	}
	managed.Clear(conn, &conn.Status.Plan)

	conn.Status.Phase = connectionPhase(conn)
	r.recordCompletion(conn)
	next, err := r.countUsers(ctx, api, tenant, conn)
	if err != nil {
		return reconcile.Success{}, err
	}
	requeue := r.ResyncInterval
	if next < requeue {
		requeue = next
	}
	return reconcile.Success{Reason: identityv1alpha1.ReasonSynced, RequeueAfter: requeue, Message: readyMessage(conn)}, nil
}

// reportPlan ends a Plan or Observe pass: the users are counted as under
// Apply (a read) when the connection exists, and the plan reported.
func (r *CustomDatabaseConnectionReconciler) reportPlan(ctx context.Context, api identity.Client, tenant *identityv1alpha1.Tenant,
	conn *identityv1alpha1.CustomDatabaseConnection, remote *remoteConnection, plan *identityv1alpha1.ManagementPlan) (reconcile.Success, error) {
	requeue := r.ResyncInterval
	if remote.current != nil {
		next, err := r.countUsers(ctx, api, tenant, conn)
		if err != nil {
			return reconcile.Success{}, err
		}
		requeue = min(requeue, next)
	}
	return managed.Report(conn, &conn.Status.Plan, plan, remote.Describe(), requeue)
}

// connectionKey is the value of indexConnectionName.
func connectionKey(conn *identityv1alpha1.CustomDatabaseConnection) string {
	return conn.Spec.TenantRef.Name + "/" + conn.Spec.ConnectionName
}

// checkOnlyConnection refuses to write a connection that another
// CustomDatabaseConnection of the same Tenant already manages: both would
// write its options, each undoing the other. The one that holds it
// (status.ownership) keeps it and is never disturbed; between two that do
// not (or both do), the older wins, then the first by name.
func (r *CustomDatabaseConnectionReconciler) checkOnlyConnection(ctx context.Context, conn *identityv1alpha1.CustomDatabaseConnection) error {
	var all identityv1alpha1.CustomDatabaseConnectionList
	if err := r.List(ctx, &all, client.InNamespace(conn.Namespace), client.MatchingFields{indexConnectionName: connectionKey(conn)}); err != nil {
		return err
	}
	for i := range all.Items {
		other := &all.Items[i]
		if other.UID == conn.UID {
			continue
		}
		holds, otherHolds := connectionOwnership(conn) != "", connectionOwnership(other) != ""
		older := other.CreationTimestamp.Before(&conn.CreationTimestamp) ||
			(other.CreationTimestamp.Equal(&conn.CreationTimestamp) && other.Name < conn.Name)
		if (otherHolds && !holds) || (otherHolds == holds && older) {
			return reconcile.Stalling(identityv1alpha1.ReasonConnectionClaimed,
				"CustomDatabaseConnection %q already manages connection %s of Tenant %q, and a connection has one writer: this object writes nothing; delete it, or choose another spec.connectionName",
				other.Name, conn.Spec.ConnectionName, conn.Spec.TenantRef.Name)
		}
	}
	return nil
}

// remoteConnection is the connection on the tenant, for the shared step
// (internal/managed): one GET in steady state, a POST when it does not
// exist, and a PATCH of the complete options when a managed value drifted
// or what would be sent changed.
type remoteConnection struct {
	r       *CustomDatabaseConnectionReconciler
	api     identity.Client
	tenant  *identityv1alpha1.Tenant
	conn    *identityv1alpha1.CustomDatabaseConnection
	desired *desiredConnection
	hash    string
	// configurationHash fingerprints the configuration alone, so that a
	// plan can say whether the Secret changed since it was last sent.
	configurationHash string
	// current and drifted are what Observe read.
	current *identity.Connection
	drifted []string
}

// Observe reads the connection by the id in status, or finds it by name
// (to adopt it, or when it was deleted behind the operator's back).
func (c *remoteConnection) Observe(ctx context.Context) (managed.Observation, error) {
	conn, name := c.conn, c.conn.Spec.ConnectionName
	if id := conn.Status.ConnectionID; id != "" {
		current, err := c.api.GetConnection(ctx, id)
		if err == nil {
			return c.observed(current, true), nil
		}
		if !errors.Is(err, identity.ErrNotFound) {
			return managed.Observation{}, classify(c.tenant, fmt.Sprintf("reading connection %q", name), err)
		}
		// Deleted outside the operator: made again (or adopted, if a
		// connection of that name exists now).
		c.r.Recorder.Eventf(conn, corev1.EventTypeWarning, identityv1alpha1.EventReasonDrift, "connection %s (%s) was deleted outside the operator", name, id)
		conn.Status.ConnectionID = ""
		conn.Status.Phase = identityv1alpha1.ConnectionPending
	}
	current, err := c.api.FindConnectionByName(ctx, name)
	switch {
	case errors.Is(err, identity.ErrNotFound):
		return managed.Observation{}, nil
	case err != nil:
		return managed.Observation{}, classify(c.tenant, fmt.Sprintf("looking up connection %q", name), err)
	}
	// From now on it is read by id.
	conn.Status.ConnectionID = current.ID
	return c.observed(current, false), nil
}

func (c *remoteConnection) observed(current *identity.Connection, known bool) managed.Observation {
	c.current, c.drifted = current, c.desired.drift(current)
	return managed.Observation{Exists: true, Known: known, UpToDate: len(c.drifted) == 0 && c.conn.Status.AppliedHash == c.hash}
}

// createBody is the POST Create sends and a plan renders.
func (c *remoteConnection) createBody() identity.ConnectionCreate {
	desired := c.desired
	return identity.ConnectionCreate{
		Name: c.conn.Spec.ConnectionName, Strategy: identity.StrategyAuth0, DisplayName: ptr.Deref(desired.DisplayName, ""),
		EnabledClients: desired.EnabledClients, Options: desired.options(nil),
	}
}

// updateBody is the PATCH Update sends and a plan renders: the complete
// options, merged into those the platform holds that the spec does not
// manage.
func (c *remoteConnection) updateBody() identity.ConnectionUpdate {
	update := identity.ConnectionUpdate{DisplayName: c.desired.DisplayName, Options: c.desired.options(c.current)}
	if c.desired.EnabledClients != nil {
		update.EnabledClients = &c.desired.EnabledClients
	}
	return update
}

// Plan renders the body Create or Update would send, option by option and
// script by script; the configuration (from a Secret) shows only whether
// it changed since last sent.
func (c *remoteConnection) Plan(exists bool) []identityv1alpha1.PlannedChange {
	state := identityv1alpha1.SecretChanged
	if s := c.conn.Status; s.AppliedConfigurationHash == c.configurationHash || (s.AppliedConfigurationHash == "" && s.AppliedHash == c.hash) {
		state = identityv1alpha1.SecretUnchanged
	}
	body := managed.Body{Expand: []string{"options", "options." + optionCustomScripts}, Replaces: []string{"options"}, AbsentIsZero: true,
		Secrets: map[string]identityv1alpha1.SecretChange{"options." + optionConfiguration: state}}
	if exists {
		body.Value, body.Current = c.updateBody(), c.current
	} else {
		body.Value = c.createBody()
	}
	return managed.Render(body)
}

// Create posts the connection with the complete options.
func (c *remoteConnection) Create(ctx context.Context) error {
	name, desired := c.conn.Spec.ConnectionName, c.desired
	created, err := c.api.CreateConnection(ctx, c.createBody())
	if err != nil {
		return connectionError(c.tenant, c.conn, desired, fmt.Sprintf("creating connection %q", name), err)
	}
	setScriptsValid(c.conn, desired)
	c.conn.Status.ConnectionID, c.conn.Status.AppliedHash, c.conn.Status.AppliedConfigurationHash = created.ID, c.hash, c.configurationHash
	return nil
}

// Update sends the complete options, merged into those the platform holds
// that the spec does not manage.
func (c *remoteConnection) Update(ctx context.Context) error {
	conn, desired := c.conn, c.desired
	if len(c.drifted) > 0 && conn.Status.AppliedHash == c.hash {
		c.r.Recorder.Eventf(conn, corev1.EventTypeWarning, identityv1alpha1.EventReasonDrift,
			"restored values changed outside the operator: %s", strings.Join(c.drifted, ", "))
		log.FromContext(ctx).Info("correcting drift", "fields", c.drifted)
	}
	if _, err := c.api.UpdateConnection(ctx, c.current.ID, c.updateBody()); err != nil {
		return connectionError(c.tenant, conn, desired, fmt.Sprintf("updating connection %q", conn.Spec.ConnectionName), err)
	}
	setScriptsValid(conn, desired)
	conn.Status.AppliedHash, conn.Status.AppliedConfigurationHash = c.hash, c.configurationHash
	return nil
}

// Describe names the connection for events.
func (c *remoteConnection) Describe() string { return describeConnection(c.conn) }

func describeConnection(conn *identityv1alpha1.CustomDatabaseConnection) string {
	if id := conn.Status.ConnectionID; id != "" {
		return fmt.Sprintf("connection %s (%s)", conn.Spec.ConnectionName, id)
	}
	return "connection " + conn.Spec.ConnectionName
}

// connectionOwnership is status.ownership, inferred for an object written
// before the field existed: an applied hash means the operator wrote the
// connection (it may have created it; it certainly wrote it).
func connectionOwnership(conn *identityv1alpha1.CustomDatabaseConnection) identityv1alpha1.RemoteOwnership {
	if s := conn.Status; s.Ownership == "" && s.ConnectionID != "" && s.AppliedHash != "" {
		return identityv1alpha1.OwnershipAdoptedWritten
	}
	return conn.Status.Ownership
}

// scriptErrorRE finds the script a platform refusal names, as in
// `Error in options.customScripts.get_user script: ...`.
var scriptErrorRE = regexp.MustCompile(`options\.customScripts\.([a-z_]+) script`)

// connectionError turns a refused create or update into a condition: a
// script the platform rejects names the script and where it came from
// (ScriptsValid=False, Stalled); "This database contains users" says what
// to do about it; other refusals go through classify (PlatformRefused).
func connectionError(tenant *identityv1alpha1.Tenant, conn *identityv1alpha1.CustomDatabaseConnection, desired *desiredConnection, what string, err error) error {
	var apiErr *identity.APIError
	if errors.Is(err, identity.ErrInvalid) && errors.As(err, &apiErr) {
		if m := scriptErrorRE.FindStringSubmatch(apiErr.Message); m != nil {
			field, source := m[1], "inline"
			for _, s := range databaseScripts {
				if s.key == m[1] {
					field, source = "spec.scripts."+s.field, desired.scriptSources[s.key]
				}
			}
			msg := fmt.Sprintf("the platform refused %s (%s): %s: fix the script", field, source, apiErr.Message)
			meta.SetStatusCondition(&conn.Status.Conditions, metav1.Condition{Type: ConditionScriptsValid, Status: metav1.ConditionFalse,
				Reason: identityv1alpha1.ReasonScriptInvalid, Message: msg, ObservedGeneration: conn.Generation})
			return reconcile.Stalling(identityv1alpha1.ReasonScriptInvalid, "%s", msg)
		}
		if strings.Contains(apiErr.Message, "contains users") {
			return reconcile.Stalling(identityv1alpha1.ReasonPlatformRefused,
				"%s: the platform refused: %s: connection %s already holds users of its own, so it cannot become a custom database; choose another spec.connectionName",
				what, apiErr.Message, conn.Spec.ConnectionName)
		}
	}
	return classify(tenant, what, err)
}

// desiredConnection is what the spec, its ConfigMaps and its Secret
// declare. It is hashed (salted) into status.appliedHash: it holds the
// configuration's plain values, so it is never logged or printed.
type desiredConnection struct {
	// DisplayName, when the spec sets one.
	DisplayName *string `json:"displayName,omitempty"`
	// EnabledClients, when the spec lists any; otherwise the clients enabled
	// on the platform are left alone.
	EnabledClients []string `json:"enabledClients,omitempty"`
	// Options are the managed option keys with the values to send; a nil
	// value means the key must be absent. Keys not in the map are not
	// managed: whatever the platform holds for them is kept.
	Options map[string]any `json:"options"`
	// scriptSources says where each script came from, for messages.
	scriptSources map[string]string
}

// desiredConnection builds the connection the spec declares, reading the
// scripts' ConfigMaps and the configuration Secret (see contentReader).
func (r *CustomDatabaseConnectionReconciler) desiredConnection(ctx context.Context, conn *identityv1alpha1.CustomDatabaseConnection) (*desiredConnection, error) {
	spec := &conn.Spec
	d := &desiredConnection{Options: map[string]any{"enabledDatabaseCustomization": true}, scriptSources: map[string]string{}}
	if spec.DisplayName != "" {
		d.DisplayName = ptr.To(spec.DisplayName)
	}
	if len(spec.EnabledClients) > 0 {
		d.EnabledClients = append([]string(nil), spec.EnabledClients...)
		sort.Strings(d.EnabledClients)
	}

	scripts, err := r.scripts(ctx, conn, d.scriptSources)
	if err != nil {
		return nil, err
	}
	d.Options[optionCustomScripts] = scripts
	d.Options[optionConfiguration] = nil
	if ref := spec.ConfigurationSecretRef; ref != nil {
		secret := &corev1.Secret{}
		if err := r.Reader.Get(ctx, types.NamespacedName{Namespace: conn.Namespace, Name: ref.Name}, secret); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, reconcile.Stalling(identityv1alpha1.ReasonConfigurationSecretNotFound,
					"Secret %q (spec.configurationSecretRef) not found in namespace %q: create it with the values the scripts read from configuration",
					ref.Name, conn.Namespace)
			}
			return nil, err
		}
		configuration := make(map[string]string, len(secret.Data))
		for k, v := range secret.Data {
			configuration[k] = string(v)
		}
		d.Options[optionConfiguration] = configuration
	}

	d.Options["import_mode"] = spec.ImportMode
	d.Options["requires_username"] = spec.RequiresUsername
	d.Options["brute_force_protection"] = ptr.Deref(spec.BruteForceProtection, true)
	d.Options["disable_signup"] = spec.DisableSignup
	if v := spec.Validation; v != nil {
		d.Options["strategy_version"], d.Options["validation"] = nil, nil
		if v.Enabled {
			d.Options["strategy_version"] = 2
			if l := v.UsernameLength; l != nil {
				d.Options["validation"] = map[string]any{"username": map[string]any{"min": l.Min, "max": l.Max}}
			}
		}
	}
	if p := spec.PasswordPolicy; p != nil {
		strength := p.Strength
		if strength == "" {
			strength = "good"
		}
		d.Options["passwordPolicy"] = string(strength)
		d.Options["password_complexity_options"], d.Options["password_history"] = nil, nil
		if p.MinLength != nil {
			d.Options["password_complexity_options"] = map[string]any{"min_length": *p.MinLength}
		}
		if p.History != nil {
			d.Options["password_history"] = map[string]any{"enable": *p.History > 0, "size": *p.History}
		}
		d.Options["password_dictionary"] = map[string]any{"enable": p.Dictionary}
		d.Options["password_no_personal_info"] = map[string]any{"enable": p.NoPersonalInfo}
	}
	return d, nil
}

// scripts resolves every declared script, inline or from its ConfigMap key.
// Once the migration is completed, login and getUser are the scripts that
// find nobody, and their sources are no longer needed.
func (r *CustomDatabaseConnectionReconciler) scripts(ctx context.Context, conn *identityv1alpha1.CustomDatabaseConnection, sources map[string]string) (map[string]string, error) {
	out := map[string]string{}
	configMaps := map[string]*corev1.ConfigMap{}
	for _, s := range databaseScripts {
		script := s.get(&conn.Spec.Scripts)
		if script == nil {
			continue
		}
		if conn.Spec.CompleteMigration && (s.key == "login" || s.key == "get_user") {
			out[s.key], sources[s.key] = completedGetUserScript, "completed migration"
			if s.key == "login" {
				out[s.key] = completedLoginScript
			}
			continue
		}
		ref := script.ConfigMapKeyRef
		if ref == nil {
			out[s.key], sources[s.key] = script.Inline, "inline"
			continue
		}
		cm, ok := configMaps[ref.Name]
		if !ok {
			cm = &corev1.ConfigMap{}
			if err := r.Reader.Get(ctx, types.NamespacedName{Namespace: conn.Namespace, Name: ref.Name}, cm); err != nil {
				if apierrors.IsNotFound(err) {
					return nil, reconcile.Stalling(identityv1alpha1.ReasonScriptSourceNotFound,
						"ConfigMap %q (spec.scripts.%s.configMapKeyRef) not found in namespace %q", ref.Name, s.field, conn.Namespace)
				}
				return nil, err
			}
			configMaps[ref.Name] = cm
		}
		src := cm.Data[ref.Key]
		if strings.TrimSpace(src) == "" {
			return nil, reconcile.Stalling(identityv1alpha1.ReasonScriptSourceNotFound,
				"ConfigMap %q has no key %q (or it is empty): spec.scripts.%s needs the script's source there", ref.Name, ref.Key, s.field)
		}
		out[s.key], sources[s.key] = src, fmt.Sprintf("ConfigMap %s, key %s", ref.Name, ref.Key)
	}
	return out, nil
}

// options are the complete options to send: the platform's current options
// (nil: none yet) with every managed key set to the spec's value, or removed.
// Keys the spec does not manage are kept as the platform holds them. The
// configuration is always managed, so its ciphertext is never sent back.
func (d *desiredConnection) options(current *identity.Connection) *identity.ConnectionOptions {
	merged := map[string]json.RawMessage{}
	if current != nil {
		if data, err := json.Marshal(current.Options); err == nil {
			_ = json.Unmarshal(data, &merged)
		}
	}
	for key, value := range d.Options {
		if value == nil {
			delete(merged, key)
			continue
		}
		data, _ := json.Marshal(value)
		merged[key] = data
	}
	data, _ := json.Marshal(merged)
	out := &identity.ConnectionOptions{}
	_ = json.Unmarshal(data, out)
	return out
}

// drift names what the platform holds differently from desired, among the
// things the spec manages. Scripts must match exactly; the configuration
// comes back as ciphertext, so only its keys can be compared (a change of
// values shows in the hash instead); other options must carry at least what
// the spec sets (the platform may add keys to an object), and a false
// boolean or a removed key matches an absent one.
func (d *desiredConnection) drift(current *identity.Connection) []string {
	var drifted []string
	if d.DisplayName != nil && current.DisplayName != *d.DisplayName {
		drifted = append(drifted, "display_name")
	}
	if d.EnabledClients != nil {
		have := append([]string(nil), current.EnabledClients...)
		sort.Strings(have)
		if !reflect.DeepEqual(have, d.EnabledClients) {
			drifted = append(drifted, "enabled_clients")
		}
	}
	observed := map[string]any{}
	if data, err := json.Marshal(current.Options); err == nil {
		_ = json.Unmarshal(data, &observed)
	}
	keys := make([]string, 0, len(d.Options))
	for key := range d.Options {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		want, have := managed.Generic(d.Options[key]), observed[key]
		var same bool
		switch key {
		case optionCustomScripts:
			same = reflect.DeepEqual(want, have)
		case optionConfiguration:
			same = sameKeys(want, have)
		default:
			same = covers(have, want)
		}
		if !same {
			drifted = append(drifted, "options."+key)
		}
	}
	return drifted
}

// covers reports whether the observed value have carries the wanted value
// want (both as encoding/json decodes into an any): objects key by key,
// false and nil (absent) matching absence, the rest by equality.
func covers(have, want any) bool {
	switch w := want.(type) {
	case nil:
		m, isMap := have.(map[string]any)
		return have == nil || (isMap && len(m) == 0)
	case bool:
		return have == w || (!w && have == nil)
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !covers(h[k], v) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(have, want)
	}
}

// sameKeys reports whether two objects (or absences) have the same keys.
func sameKeys(a, b any) bool {
	ma, _ := a.(map[string]any)
	mb, _ := b.(map[string]any)
	if len(ma) != len(mb) {
		return false
	}
	for k := range ma {
		if _, ok := mb[k]; !ok {
			return false
		}
	}
	return true
}

// reconcileDelete removes the connection, and with it its users, for
// deletionPolicy Delete only (the default, Orphan, keeps a connection that
// holds users), and only a connection the operator owns: one it created,
// or adopted and then wrote (status.ownership). A connection it adopted and
// never wrote is left, with an event.
func (r *CustomDatabaseConnectionReconciler) reconcileDelete(ctx context.Context, conn *identityv1alpha1.CustomDatabaseConnection) error {
	policy := conn.Spec.DeletionPolicy
	if policy == "" {
		policy = identityv1alpha1.DeletionPolicyOrphan
	}
	err := r.Remote.Delete(ctx, conn, policy, connectionOwnership(conn), describeConnection(conn), func(ctx context.Context) error {
		tenant, err := getTenant(ctx, r.Client, conn.Namespace, conn.Spec.TenantRef.Name, tenantRetry)
		if err != nil {
			return err
		}
		api, err := r.Access.ClientFor(ctx, tenant)
		if err != nil {
			return err
		}
		if err := api.DeleteConnection(ctx, conn.Status.ConnectionID); err != nil && !errors.Is(err, identity.ErrNotFound) {
			return classify(tenant, fmt.Sprintf("deleting connection %q", conn.Spec.ConnectionName), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return reconcile.RemoveFinalizer(ctx, r.Client, conn, identityv1alpha1.Finalizer)
}

// SetupWithManager registers the reconciler; it watches its Tenants (to
// start once one appears), and the ConfigMaps of its scripts and the Secret
// of its configuration (metadata only: contents are read through contentReader).
func (r *CustomDatabaseConnectionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(context.Background(), &identityv1alpha1.CustomDatabaseConnection{}, indexScriptConfigMap, func(obj client.Object) []string {
		scripts := &obj.(*identityv1alpha1.CustomDatabaseConnection).Spec.Scripts
		var names []string
		for _, s := range databaseScripts {
			if script := s.get(scripts); script != nil && script.ConfigMapKeyRef != nil {
				names = append(names, script.ConfigMapKeyRef.Name)
			}
		}
		sort.Strings(names)
		return slices.Compact(names)
	}); err != nil {
		return err
	}
	if err := indexer.IndexField(context.Background(), &identityv1alpha1.CustomDatabaseConnection{}, indexConnectionName, func(obj client.Object) []string {
		return []string{connectionKey(obj.(*identityv1alpha1.CustomDatabaseConnection))}
	}); err != nil {
		return err
	}
	if err := indexer.IndexField(context.Background(), &identityv1alpha1.CustomDatabaseConnection{}, indexConfigurationSecret, func(obj client.Object) []string {
		if ref := obj.(*identityv1alpha1.CustomDatabaseConnection).Spec.ConfigurationSecretRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).WithOptions(controllerOptions()).
		For(&identityv1alpha1.CustomDatabaseConnection{}, builder.WithPredicates(reconcile.SpecChanged())).
		Watches(&identityv1alpha1.Tenant{}, handler.EnqueueRequestsFromMapFunc(indexedBy(r.Client, &identityv1alpha1.CustomDatabaseConnectionList{}, indexTenantRef)), builder.WithPredicates(reconcile.ReadinessChanged())).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(indexedBy(r.Client, &identityv1alpha1.CustomDatabaseConnectionList{}, indexScriptConfigMap)), builder.OnlyMetadata).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(indexedBy(r.Client, &identityv1alpha1.CustomDatabaseConnectionList{}, indexConfigurationSecret)), builder.OnlyMetadata).
		WatchesRawSource(tenantRecovered(r.Access, mgr.GetClient(), &identityv1alpha1.CustomDatabaseConnectionList{})).
		Complete(r)
}
