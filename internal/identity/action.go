package identity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The Actions API (https://auth0.com/docs/api/management/v2/actions/get-actions and the
// pages beside it: post-action, patch-action, delete-action, post-deploy-action,
// get-action-versions, get-bindings, patch-bindings).
//
// An action is an editable draft (code, dependencies, runtime, secrets, the trigger it is
// written for); writing it builds the draft; deploying it makes an immutable, numbered
// version, which is what the trigger runs. A trigger runs the deployed versions of the
// actions bound to it, in the order of its bindings, and the bindings are written as one
// list: PATCH replaces them all.
//
// Unverified against the public docs, recorded as the emulator does (test/emulator
// README): the shape of build errors (`errors: [{id, msg, url}]` on the action and its
// version); that a PATCH's secrets list replaces the whole secret set; the status of a
// refused DELETE of a bound action without force (400 or 409: both are ErrInvalid or
// ErrConflict here, never "done"); that each binding in GET .../bindings carries its
// action with code, secrets names and deployed version (the controller falls back to
// GET /actions/actions/{id} when it does not).

// Action build statuses, the action's "status".
const (
	ActionStatusBuilt    = "built"
	ActionStatusFailed   = "failed"
	ActionStatusPending  = "pending"
	ActionStatusBuilding = "building"
)

// ActionTrigger is a trigger an action is written for, e.g. post-login v3.
type ActionTrigger struct {
	// ID is the trigger id, e.g. "post-login".
	ID string `json:"id"`
	// Version is the trigger's API version, e.g. "v3".
	Version string `json:"version"`
}

// ActionDependency is an npm package the action requires.
type ActionDependency struct {
	// Name of the package.
	Name string `json:"name"`
	// Version of the package.
	Version string `json:"version"`
}

// ActionSecret is a secret sent with an action. The value is a credential: never log it.
type ActionSecret struct {
	// Name is how the code reads it (event.secrets.NAME).
	Name string `json:"name"`
	// Value is the secret itself.
	Value string `json:"value"`
}

// String redacts the value.
func (s ActionSecret) String() string { return "ActionSecret{" + s.Name + ": (redacted)}" }

// GoString redacts the value, so %#v does not print it either.
func (s ActionSecret) GoString() string { return s.String() }

// ActionSecretName is a secret as the platform answers it: the name, never the value.
type ActionSecretName struct {
	// Name of the secret.
	Name string `json:"name"`
	// UpdatedAt is when its value was last written.
	UpdatedAt string `json:"updated_at,omitempty"`
}

// ActionBuildError is one problem the platform found building an action's code.
type ActionBuildError struct {
	// ID names the kind of problem.
	ID string `json:"id,omitempty"`
	// Msg is the platform's message, such as a syntax error with its line.
	Msg string `json:"msg,omitempty"`
	// URL points at documentation about it.
	URL string `json:"url,omitempty"`
}

// Action is an action's draft as the platform returns it.
type Action struct {
	// ID is the platform's identifier (a UUID).
	ID string `json:"id"`
	// Name is unique in the tenant.
	Name string `json:"name"`
	// SupportedTriggers is the trigger the action is written for (one).
	SupportedTriggers []ActionTrigger `json:"supported_triggers,omitempty"`
	// Code is the JavaScript source.
	Code string `json:"code"`
	// Dependencies are the npm packages it requires.
	Dependencies []ActionDependency `json:"dependencies,omitempty"`
	// Runtime is the Node.js runtime, e.g. "node22".
	Runtime string `json:"runtime,omitempty"`
	// Secrets are the secrets' names (values are never answered).
	Secrets []ActionSecretName `json:"secrets,omitempty"`
	// Status is the draft's build status (ActionStatus*).
	Status string `json:"status,omitempty"`
	// Errors are the build problems when Status is failed.
	Errors []ActionBuildError `json:"errors,omitempty"`
	// AllChangesDeployed is false while the draft differs from the deployed version.
	AllChangesDeployed bool `json:"all_changes_deployed"`
	// DeployedVersion is the version the trigger runs; nil until deployed.
	DeployedVersion *ActionVersion `json:"deployed_version,omitempty"`
	// CreatedAt and UpdatedAt are the platform's timestamps.
	CreatedAt string `json:"created_at,omitempty"`
	UpdatedAt string `json:"updated_at,omitempty"`
}

// BuildError is the draft's build failure as an error (nil unless Status is failed):
// an *ActionBuildFailedError quoting the platform.
func (a *Action) BuildError() error {
	if a.Status != ActionStatusFailed {
		return nil
	}
	return &ActionBuildFailedError{Action: a.Name, Errors: a.Errors}
}

// ActionVersion is an immutable, numbered snapshot of an action.
type ActionVersion struct {
	// ID is the version's identifier.
	ID string `json:"id"`
	// ActionID is the action it belongs to.
	ActionID string `json:"action_id,omitempty"`
	// Number counts the action's versions from 1.
	Number int `json:"number"`
	// Deployed is true for the one version the trigger runs.
	Deployed bool `json:"deployed"`
	// Status is the version's build status.
	Status string `json:"status,omitempty"`
	// Errors are its build problems.
	Errors []ActionBuildError `json:"errors,omitempty"`
	// Code, Dependencies, Runtime, Secrets and SupportedTriggers are what it froze.
	Code              string             `json:"code,omitempty"`
	Dependencies      []ActionDependency `json:"dependencies,omitempty"`
	Runtime           string             `json:"runtime,omitempty"`
	Secrets           []ActionSecretName `json:"secrets,omitempty"`
	SupportedTriggers []ActionTrigger    `json:"supported_triggers,omitempty"`
	// CreatedAt is when it was made.
	CreatedAt string `json:"created_at,omitempty"`
}

// ActionCreate is the body of POST /api/v2/actions/actions.
type ActionCreate struct {
	// Name must be unique in the tenant (ErrConflict otherwise).
	Name string `json:"name"`
	// SupportedTriggers is the trigger the action is written for.
	SupportedTriggers []ActionTrigger `json:"supported_triggers"`
	// Code is the JavaScript source.
	Code string `json:"code"`
	// Runtime is the Node.js runtime; the platform's default when empty.
	Runtime string `json:"runtime,omitempty"`
	// Dependencies are the npm packages it requires.
	Dependencies []ActionDependency `json:"dependencies"`
	// Secrets are its secrets, values included.
	Secrets []ActionSecret `json:"secrets"`
}

// ActionUpdate is the body of PATCH /api/v2/actions/actions/{id}: unset fields are left
// alone. Secrets, when set, replace the whole secret set (each with its value).
type ActionUpdate struct {
	// Name, when set, renames the action.
	Name *string `json:"name,omitempty"`
	// SupportedTriggers, when set, replaces the triggers.
	SupportedTriggers *[]ActionTrigger `json:"supported_triggers,omitempty"`
	// Code, when set, replaces the source.
	Code *string `json:"code,omitempty"`
	// Runtime, when set, replaces the runtime.
	Runtime *string `json:"runtime,omitempty"`
	// Dependencies, when set, replaces the dependencies (empty: none).
	Dependencies *[]ActionDependency `json:"dependencies,omitempty"`
	// Secrets, when set, replaces the secrets (empty: none).
	Secrets *[]ActionSecret `json:"secrets,omitempty"`
}

// TriggerBinding is one entry of a trigger's execution order, with its action.
type TriggerBinding struct {
	// ID is the binding's identifier.
	ID string `json:"id"`
	// TriggerID is the trigger it belongs to.
	TriggerID string `json:"trigger_id,omitempty"`
	// DisplayName is the binding's name in the flow.
	DisplayName string `json:"display_name"`
	// Action is the bound action.
	Action Action `json:"action"`
}

// BindingRef says which action a binding of a PATCH runs.
type BindingRef struct {
	// Type is "action_id" or "action_name".
	Type string `json:"type"`
	// Value is the action's id or name.
	Value string `json:"value"`
}

// Binding reference types.
const (
	BindingRefActionID   = "action_id"
	BindingRefActionName = "action_name"
)

// BindingUpdate is one entry of the list PATCH .../bindings makes the trigger's whole
// execution order.
type BindingUpdate struct {
	// Ref is the action.
	Ref BindingRef `json:"ref"`
	// DisplayName is the binding's name in the flow.
	DisplayName string `json:"display_name,omitempty"`
}

// ActionBuildFailedError is an action whose code the platform could not build (a
// syntax error, a dependency it cannot resolve). It matches ErrBuildFailed.
type ActionBuildFailedError struct {
	// Action names the action.
	Action string
	// Errors are the platform's build problems.
	Errors []ActionBuildError
	// APIError is the platform's refusal, when the failure came as one (a deploy
	// answered 400); nil when it came as the action's build status.
	APIError *APIError
}

// ErrBuildFailed matches an *ActionBuildFailedError.
var ErrBuildFailed = errors.New("action build failed")

// Error quotes the platform's build messages.
func (e *ActionBuildFailedError) Error() string {
	return fmt.Sprintf("identity: the build of action %s failed: %s", e.Action, e.Message())
}

// Message is the platform's build messages, joined.
func (e *ActionBuildFailedError) Message() string {
	var msgs []string
	for _, b := range e.Errors {
		if b.Msg != "" {
			msgs = append(msgs, b.Msg)
		}
	}
	if len(msgs) == 0 && e.APIError != nil {
		msgs = append(msgs, e.APIError.Message)
	}
	if len(msgs) == 0 {
		return "the platform gave no reason"
	}
	return strings.Join(msgs, "; ")
}

// Is matches ErrBuildFailed, and ErrInvalid when the failure was a refusal.
func (e *ActionBuildFailedError) Is(target error) bool {
	return target == ErrBuildFailed || (e.APIError != nil && target == ErrInvalid)
}

// Unwrap gives the refusal, if any.
func (e *ActionBuildFailedError) Unwrap() error {
	if e.APIError == nil {
		return nil
	}
	return e.APIError
}

const (
	opGetAction             = "GetAction"
	opFindActionByName      = "FindActionByName"
	opCreateAction          = "CreateAction"
	opUpdateAction          = "UpdateAction"
	opDeleteAction          = "DeleteAction"
	opDeployAction          = "DeployAction"
	opListActionVersions    = "ListActionVersions"
	opListTriggerBindings   = "ListTriggerBindings"
	opUpdateTriggerBindings = "UpdateTriggerBindings"
)

// actionsPerPage is the largest page the Actions API serves: one request reads a
// trigger's bindings in all but the rarest tenants.
const actionsPerPage = 100

// actionsPage is the Actions API's list shape, {key:[...],"total","page","per_page"}.
type actionsPage[T any] struct {
	Actions  []T `json:"actions"`
	Versions []T `json:"versions"`
	Bindings []T `json:"bindings"`
	Total    int `json:"total"`
}

func (p actionsPage[T]) items() []T {
	switch {
	case p.Bindings != nil:
		return p.Bindings
	case p.Versions != nil:
		return p.Versions
	default:
		return p.Actions
	}
}

// listPages reads every page of an Actions API list.
func listPages[T any](ctx context.Context, c *client, op, path string, q url.Values) ([]T, error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("per_page", strconv.Itoa(actionsPerPage))
	var out []T
	for page := 0; ; page++ {
		q.Set("page", strconv.Itoa(page))
		var p actionsPage[T]
		if _, err := c.do(ctx, op, http.MethodGet, path, q, nil, &p); err != nil {
			return nil, err
		}
		items := p.items()
		out = append(out, items...)
		if len(items) == 0 || len(out) >= p.Total {
			return out, nil
		}
	}
}

// GetAction implements Client.
func (c *client) GetAction(ctx context.Context, id string) (*Action, error) {
	var a Action
	if _, err := c.do(ctx, opGetAction, http.MethodGet, "actions/actions/"+seg(id), nil, nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// FindActionByName implements Client.
func (c *client) FindActionByName(ctx context.Context, name, triggerID string) (*Action, error) {
	if name == "" {
		return nil, fmt.Errorf("identity: %s: empty name", opFindActionByName)
	}
	q := url.Values{"actionName": {name}}
	if triggerID != "" {
		q.Set("triggerId", triggerID)
	}
	actions, err := listPages[Action](ctx, c, opFindActionByName, "actions/actions", q)
	if err != nil {
		return nil, err
	}
	for i := range actions {
		// The filter is exact on the platform; checking again keeps a lax server from
		// handing over the wrong action.
		if actions[i].Name == name {
			return &actions[i], nil
		}
	}
	return nil, &APIError{Operation: opFindActionByName, Message: "no action named " + name, kind: ErrNotFound}
}

// CreateAction implements Client.
func (c *client) CreateAction(ctx context.Context, create ActionCreate) (*Action, error) {
	if create.Dependencies == nil {
		create.Dependencies = []ActionDependency{}
	}
	if create.Secrets == nil {
		create.Secrets = []ActionSecret{}
	}
	var a Action
	if _, err := c.do(ctx, opCreateAction, http.MethodPost, "actions/actions", nil, create, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// UpdateAction implements Client.
func (c *client) UpdateAction(ctx context.Context, id string, update ActionUpdate) (*Action, error) {
	var a Action
	if _, err := c.do(ctx, opUpdateAction, http.MethodPatch, "actions/actions/"+seg(id), nil, update, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// DeleteAction implements Client.
func (c *client) DeleteAction(ctx context.Context, id string, force bool) error {
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}}
	}
	_, err := c.do(ctx, opDeleteAction, http.MethodDelete, "actions/actions/"+seg(id), q, nil, nil)
	if isNotFound(err) {
		return nil
	}
	return err
}

// DeployAction implements Client.
func (c *client) DeployAction(ctx context.Context, id string) (*ActionVersion, error) {
	var v ActionVersion
	if _, err := c.do(ctx, opDeployAction, http.MethodPost, "actions/actions/"+seg(id)+"/deploy", nil, nil, &v); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.kind == ErrInvalid {
			// The platform refuses to deploy a draft that does not build, and says why.
			return nil, &ActionBuildFailedError{Action: id, APIError: ae}
		}
		return nil, err
	}
	return &v, nil
}

// ListActionVersions implements Client.
func (c *client) ListActionVersions(ctx context.Context, id string) ([]ActionVersion, error) {
	return listPages[ActionVersion](ctx, c, opListActionVersions, "actions/actions/"+seg(id)+"/versions", nil)
}

// ListTriggerBindings implements Client.
func (c *client) ListTriggerBindings(ctx context.Context, triggerID string) ([]TriggerBinding, error) {
	return listPages[TriggerBinding](ctx, c, opListTriggerBindings, "actions/triggers/"+seg(triggerID)+"/bindings", nil)
}

// bindingsBody is the body of PATCH .../bindings and its answer.
type bindingsBody[T any] struct {
	Bindings []T `json:"bindings"`
}

// UpdateTriggerBindings implements Client.
func (c *client) UpdateTriggerBindings(ctx context.Context, triggerID string, bindings []BindingUpdate) ([]TriggerBinding, error) {
	if bindings == nil {
		bindings = []BindingUpdate{}
	}
	var out bindingsBody[TriggerBinding]
	if _, err := c.do(ctx, opUpdateTriggerBindings, http.MethodPatch, "actions/triggers/"+seg(triggerID)+"/bindings", nil,
		bindingsBody[BindingUpdate]{Bindings: bindings}, &out); err != nil {
		return nil, err
	}
	return out.Bindings, nil
}
