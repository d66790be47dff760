package managed

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
	"github.com/tenantops/identity-operator/internal/reconcile"
)

// A plan is rendered from the request body Apply would send, never from a
// description of it kept beside the code that sends it: the reconcilers
// build the body once (the settings PATCH, the provider or connection
// create/update, the reset_email template), then either send it (Apply)
// or render it here (Plan, Observe). What the plan lists is therefore what
// Apply sends, key by key.

// Body is one request body Apply would send, with what it is compared to.
type Body struct {
	// Prefix is put before every field name, such as "settings." when a
	// kind writes several remote objects; "" when it writes one.
	Prefix string
	// Value is the request body (a value of the identity client's wire
	// types, encoded as it would be on the wire).
	Value any
	// Current is the remote object as read, in the same wire form; nil when
	// it does not exist (a create: every field is a change).
	Current any
	// Expand lists the object-valued fields whose keys are fields of their
	// own (dotted paths within the body, such as "flags" or "options",
	// "options.customScripts"). Other values are compared and shown whole.
	Expand []string
	// Secrets says, for each field whose value comes from a Secret, whether
	// it differs from what was last sent. Such a field is listed with that
	// word only: never its value, nor the remote's.
	Secrets map[string]identityv1alpha1.SecretChange
	// AbsentIsZero: the remote reads a false, null or empty value the same
	// as a field it does not hold (a connection's options), so sending one
	// for an absent field changes nothing and is not listed. Not for tenant
	// flags: an absent flag is the platform's default, which may be true.
	AbsentIsZero bool
	// Replaces lists the expanded fields the request replaces whole (a
	// connection's options): a key the remote holds there and the body
	// leaves out is removed, and listed with To null.
	Replaces []string
}

// maxShown bounds a value shown in a plan: a script or an HTML page is
// shown by its beginning and its size, so that status stays small.
const maxShown = 1024

// Render lists the fields of b.Value that change the remote object: those
// whose value differs from b.Current's, and every secret field with
// Changed or Unchanged. A field the body sends with the value the remote
// already holds is not listed; nor is a false, null or empty value sent
// for a field the remote does not hold, with AbsentIsZero.
// Fields come out sorted by name.
func Render(b Body) []identityv1alpha1.PlannedChange {
	body := Generic(b.Value)
	var current any
	exists := b.Current != nil && !(reflect.ValueOf(b.Current).Kind() == reflect.Pointer && reflect.ValueOf(b.Current).IsNil())
	if exists {
		current = Generic(b.Current)
	}
	expand, replaces := map[string]bool{}, map[string]bool{}
	for _, e := range b.Expand {
		expand[e] = true
	}
	for _, e := range b.Replaces {
		replaces[e] = true
	}
	var out []identityv1alpha1.PlannedChange
	var walk func(path string, want, have any, haveOK bool)
	walk = func(path string, want, have any, haveOK bool) {
		if state, secret := b.Secrets[path]; secret {
			out = append(out, identityv1alpha1.PlannedChange{Field: b.Prefix + path, Secret: state})
			return
		}
		if m, ok := want.(map[string]any); ok && (path == "" || expand[path]) {
			h, _ := have.(map[string]any)
			for k, v := range m {
				hv, ok := h[k]
				walk(join(path, k), v, hv, ok)
			}
			if replaces[path] {
				for k, hv := range h {
					if _, sent := m[k]; sent || (b.AbsentIsZero && isZero(hv)) {
						continue
					}
					c := identityv1alpha1.PlannedChange{Field: b.Prefix + join(path, k), From: show(hv), To: "null"}
					if _, secret := b.Secrets[join(path, k)]; secret {
						c = identityv1alpha1.PlannedChange{Field: c.Field, Secret: identityv1alpha1.SecretChanged}
					}
					out = append(out, c)
				}
			}
			return
		}
		if haveOK && reflect.DeepEqual(want, have) {
			return
		}
		if !haveOK && exists && b.AbsentIsZero && isZero(want) {
			return
		}
		c := identityv1alpha1.PlannedChange{Field: b.Prefix + path, To: show(want)}
		if haveOK {
			c.From = show(have)
		}
		out = append(out, c)
	}
	walk("", body, current, exists)
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

// Count is how many of changes Apply would send now: a secret sent again
// unchanged and a change due later are not counted.
func Count(changes []identityv1alpha1.PlannedChange) int32 {
	n := int32(0)
	for _, c := range changes {
		if c.Due == nil && c.Secret != identityv1alpha1.SecretUnchanged {
			n++
		}
	}
	return n
}

// Summary names the changes for a condition message, such as
// "3 changes pending: settings.friendly_name, settings.flags.x, credentials.api_key (secret changed)",
// or under Observe "2 fields differ: ...".
func Summary(plan *identityv1alpha1.ManagementPlan) string {
	var now, due []string
	for _, c := range plan.Changes {
		name := c.Field
		if c.Secret != "" {
			name += " (secret " + strings.ToLower(string(c.Secret)) + ")"
		}
		switch {
		case c.Due != nil:
			due = append(due, fmt.Sprintf("%s at %s", name, c.Due.UTC().Format("2006-01-02T15:04:05Z")))
		case c.Secret == identityv1alpha1.SecretUnchanged:
		default:
			now = append(now, name)
		}
	}
	one, many := "1 change pending: ", "%d changes pending: %s"
	if plan.Policy == identityv1alpha1.ManagementPolicyObserve {
		one, many = "1 field differs: ", "%d fields differ: %s"
	}
	var msg string
	switch n := len(now); {
	case plan.Action == identityv1alpha1.PlanCreate:
		msg = fmt.Sprintf("the remote object does not exist: Apply would create it with %d fields: %s", n, strings.Join(now, ", "))
	case n == 0:
		msg = "nothing to change now"
	case n == 1:
		msg = one + now[0]
	default:
		msg = fmt.Sprintf(many, n, strings.Join(now, ", "))
	}
	if len(due) > 0 {
		msg += fmt.Sprintf("; %d due later: %s", len(due), strings.Join(due, ", "))
	}
	return msg
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Generic is v as encoding/json decodes it into an any: the form in which a
// value of the spec compares with one read from the wire.
func Generic(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	_ = json.Unmarshal(data, &out)
	return out
}

func isZero(v any) bool {
	switch w := v.(type) {
	case nil:
		return true
	case bool:
		return !w
	case map[string]any:
		return len(w) == 0
	case []any:
		return len(w) == 0
	}
	return false
}

// show is v as compact JSON, its beginning only when long.
func show(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	if len(data) <= maxShown {
		return string(data)
	}
	return fmt.Sprintf("%s... (%d bytes)", data[:maxShown/4], len(data))
}

// Report writes the outcome of a Plan or Observe pass on obj: plan into
// *status, the Planned (Plan) or Drifted (Observe) condition, and returns
// the pass's Success (Ready True, reason Planned or Observed) - or, under
// Observe, a Stalling error when the remote object does not exist, which
// Observe never creates. what names the remote object in messages.
func Report(obj reconcile.Object, status **identityv1alpha1.ManagementPlan, plan *identityv1alpha1.ManagementPlan, what string, requeue time.Duration) (reconcile.Success, error) {
	*status = plan
	conditions := obj.GetConditions()
	set := func(t string, st metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&conditions, metav1.Condition{Type: t, Status: st, Reason: reason, Message: msg, ObservedGeneration: obj.GetGeneration()})
	}
	defer func() { obj.SetConditions(conditions) }()
	summary := Summary(plan)
	if plan.Policy == identityv1alpha1.ManagementPolicyObserve {
		meta.RemoveStatusCondition(&conditions, identityv1alpha1.ConditionPlanned)
		switch {
		case plan.Action == identityv1alpha1.PlanCreate:
			msg := fmt.Sprintf("%s does not exist, and managementPolicy Observe never creates it: create it on the platform, or set managementPolicy Apply", what)
			set(identityv1alpha1.ConditionDrifted, metav1.ConditionTrue, identityv1alpha1.ReasonRemoteMissing, msg)
			return reconcile.Success{}, reconcile.Stalling(identityv1alpha1.ReasonRemoteMissing, "%s", msg)
		case plan.Pending > 0:
			set(identityv1alpha1.ConditionDrifted, metav1.ConditionTrue, identityv1alpha1.ReasonDriftDetected,
				fmt.Sprintf("%s differs from the spec (status.plan), and managementPolicy Observe does not correct it: %s", what, summary))
		default:
			set(identityv1alpha1.ConditionDrifted, metav1.ConditionFalse, identityv1alpha1.ReasonInSync, what+" is as the spec declares")
		}
		return reconcile.Success{Reason: identityv1alpha1.ReasonObserved, RequeueAfter: requeue,
			Message: fmt.Sprintf("managementPolicy Observe: %s read, nothing written; %s", what, summary)}, nil
	}
	meta.RemoveStatusCondition(&conditions, identityv1alpha1.ConditionDrifted)
	reason := identityv1alpha1.ReasonNoChanges
	if plan.Pending > 0 {
		reason = identityv1alpha1.ReasonChangesPending
	}
	set(identityv1alpha1.ConditionPlanned, metav1.ConditionTrue, reason, summary)
	return reconcile.Success{Reason: identityv1alpha1.ReasonPlanned, RequeueAfter: requeue,
		Message: fmt.Sprintf("managementPolicy Plan: %s read, nothing sent; %s (status.plan)", what, summary)}, nil
}

// Clear removes what Report wrote: under Apply there is no plan.
func Clear(obj reconcile.Object, status **identityv1alpha1.ManagementPlan) {
	*status = nil
	conditions := obj.GetConditions()
	meta.RemoveStatusCondition(&conditions, identityv1alpha1.ConditionPlanned)
	meta.RemoveStatusCondition(&conditions, identityv1alpha1.ConditionDrifted)
	obj.SetConditions(conditions)
}
