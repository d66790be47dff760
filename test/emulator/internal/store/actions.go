package store

import (
	"database/sql"
	"errors"
	"time"
)

// Actions follow the platform's model: an action is the editable draft
// (code, dependencies, runtime, secrets, the trigger it is for); deploying
// it makes an immutable, numbered version; a trigger runs the deployed
// versions of the actions bound to it, in the bindings' order.
//
// Writing an action's code builds the draft at once (the platform builds
// asynchronously); a version is only ever made from a built draft.

// ActionTrigger names a trigger and its version, e.g. post-login v3.
type ActionTrigger struct {
	ID      string `json:"id"`
	Version string `json:"version"`
}

// ActionSecret is a secret of an action: its value sealed, never answered.
type ActionSecret struct {
	Name        string    `json:"name"`
	ValueSealed string    `json:"value_sealed"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// ActionCode is what a version freezes of its action.
type ActionCode struct {
	Code              string           `json:"code"`
	Dependencies      []map[string]any `json:"dependencies"`
	Runtime           string           `json:"runtime"`
	Secrets           []ActionSecret   `json:"secrets"`
	SupportedTriggers []ActionTrigger  `json:"supported_triggers"`
}

// ActionBuildError is one reason a draft failed to build.
type ActionBuildError struct {
	ID  string `json:"id"`
	Msg string `json:"msg"`
	URL string `json:"url"`
}

// Action build states.
const (
	ActionBuilt  = "built"
	ActionFailed = "failed"
)

// Action is the draft of an action.
type Action struct {
	ID     string `json:"id"`
	Domain string `json:"-"`
	Name   string `json:"name"`
	ActionCode
	// Status is the draft's build state: ActionBuilt or ActionFailed
	// ("" in documents from before builds: built).
	Status string `json:"status,omitempty"`
	// BuildErrors say why a failed build failed.
	BuildErrors []ActionBuildError `json:"build_errors,omitempty"`
	// DeployedVersionID is the version the action's bindings run ("" until
	// deployed).
	DeployedVersionID string `json:"deployed_version_id,omitempty"`
	// AllChangesDeployed is false while the draft differs from the
	// deployed version.
	AllChangesDeployed bool      `json:"all_changes_deployed"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
	Seq                int64     `json:"-"`
}

// ActionVersion is an immutable, numbered snapshot of an action.
type ActionVersion struct {
	ID       string `json:"id"`
	Domain   string `json:"-"`
	ActionID string `json:"action_id"`
	Number   int    `json:"number"`
	ActionCode
	Deployed  bool      `json:"deployed"`
	CreatedAt time.Time `json:"created_at"`
}

// ActionBinding attaches an action to a trigger; a trigger's bindings run
// in Position order.
type ActionBinding struct {
	ID          string    `json:"id"`
	Domain      string    `json:"-"`
	TriggerID   string    `json:"trigger_id"`
	Position    int       `json:"position"`
	ActionID    string    `json:"action_id"`
	DisplayName string    `json:"display_name"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// CreateAction inserts a; ErrConflict when the name is taken on the tenant.
func (q Q) CreateAction(a *Action) error {
	n, err := q.NextSeq()
	if err != nil {
		return err
	}
	a.Seq = n
	_, err = q.ex.ExecContext(bg, `INSERT INTO actions(id, domain, name, seq, doc) VALUES(?, ?, ?, ?, ?)`, a.ID, a.Domain, a.Name, n, mustJSON(a))
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

// PutAction replaces an existing action (name included).
func (q Q) PutAction(a Action) error {
	_, err := q.ex.ExecContext(bg, `UPDATE actions SET name = ?, doc = ? WHERE domain = ? AND id = ?`, a.Name, mustJSON(a), a.Domain, a.ID)
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

func scanAction(sc interface{ Scan(...any) error }, domain string) (Action, error) {
	var (
		a   Action
		doc string
	)
	if err := sc.Scan(&a.Seq, &doc); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return a, ErrNotFound
		}
		return a, err
	}
	s := a.Seq
	err := jsonUnmarshal(doc, &a)
	a.Seq, a.Domain = s, domain
	return a, err
}

// Action returns the action with id.
func (q Q) Action(domain, id string) (Action, error) {
	return scanAction(q.ex.QueryRowContext(bg, `SELECT seq, doc FROM actions WHERE domain = ? AND id = ?`, domain, id), domain)
}

// ActionFilter selects actions; empty fields match everything. Filters on
// the document (trigger, deployed) are the caller's.
type ActionFilter struct {
	Name string
}

// Actions lists a tenant's matching actions in creation order.
func (q Q) Actions(domain string, f ActionFilter) ([]Action, error) {
	where, args := `domain = ?`, []any{domain}
	if f.Name != "" {
		where += ` AND name = ?`
		args = append(args, f.Name)
	}
	rows, err := q.ex.QueryContext(bg, `SELECT seq, doc FROM actions WHERE `+where+` ORDER BY seq`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Action
	for rows.Next() {
		a, err := scanAction(rows, domain)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeleteAction removes an action with its versions; the platform refuses
// to delete a bound action, which is the caller's check.
func (q Q) DeleteAction(domain, id string) (bool, error) {
	if _, err := q.ex.ExecContext(bg, `DELETE FROM action_versions WHERE domain = ? AND action_id = ?`, domain, id); err != nil {
		return false, err
	}
	res, err := q.ex.ExecContext(bg, `DELETE FROM actions WHERE domain = ? AND id = ?`, domain, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// CreateActionVersion inserts v with the next number of its action and
// returns it.
func (q Q) CreateActionVersion(v ActionVersion) (ActionVersion, error) {
	n, err := count(q, `SELECT coalesce(max(number), 0) FROM action_versions WHERE domain = ? AND action_id = ?`, v.Domain, v.ActionID)
	if err != nil {
		return v, err
	}
	v.Number = n + 1
	_, err = q.ex.ExecContext(bg, `INSERT INTO action_versions(id, domain, action_id, number, doc) VALUES(?, ?, ?, ?, ?)`,
		v.ID, v.Domain, v.ActionID, v.Number, mustJSON(v))
	return v, err
}

// PutActionVersion replaces a version's document (to move the deployed mark).
func (q Q) PutActionVersion(v ActionVersion) error {
	_, err := q.ex.ExecContext(bg, `UPDATE action_versions SET doc = ? WHERE domain = ? AND id = ?`, mustJSON(v), v.Domain, v.ID)
	return err
}

// ActionVersion returns a version of an action.
func (q Q) ActionVersion(domain, actionID, id string) (ActionVersion, error) {
	var v ActionVersion
	err := getDoc(q, &v, `SELECT doc FROM action_versions WHERE domain = ? AND action_id = ? AND id = ?`, domain, actionID, id)
	v.Domain = domain
	return v, err
}

// ActionVersions lists an action's versions, newest first.
func (q Q) ActionVersions(domain, actionID string) ([]ActionVersion, error) {
	vs, err := listDocs[ActionVersion](q, `SELECT doc FROM action_versions WHERE domain = ? AND action_id = ? ORDER BY number DESC`, domain, actionID)
	for i := range vs {
		vs[i].Domain = domain
	}
	return vs, err
}

// Bindings lists a trigger's bindings in execution order.
func (q Q) Bindings(domain, triggerID string) ([]ActionBinding, error) {
	bs, err := listDocs[ActionBinding](q, `SELECT doc FROM action_bindings WHERE domain = ? AND trigger_id = ? ORDER BY position`, domain, triggerID)
	for i := range bs {
		bs[i].Domain = domain
	}
	return bs, err
}

// ReplaceBindings makes binds a trigger's bindings, in this order (the
// platform's PATCH of a trigger's bindings replaces the whole list).
func (q Q) ReplaceBindings(domain, triggerID string, binds []ActionBinding) error {
	if _, err := q.ex.ExecContext(bg, `DELETE FROM action_bindings WHERE domain = ? AND trigger_id = ?`, domain, triggerID); err != nil {
		return err
	}
	for i, b := range binds {
		b.Domain, b.TriggerID, b.Position = domain, triggerID, i
		if _, err := q.ex.ExecContext(bg, `INSERT INTO action_bindings(id, domain, trigger_id, position, action_id, doc) VALUES(?, ?, ?, ?, ?, ?)`,
			b.ID, domain, triggerID, i, b.ActionID, mustJSON(b)); err != nil {
			return err
		}
	}
	return nil
}

// DeleteBindingsOf removes every binding that runs an action, on every
// trigger; the others keep their order.
func (q Q) DeleteBindingsOf(domain, actionID string) error {
	_, err := q.ex.ExecContext(bg, `DELETE FROM action_bindings WHERE domain = ? AND action_id = ?`, domain, actionID)
	return err
}

// CountBindingsOf counts the bindings that run an action.
func (q Q) CountBindingsOf(domain, actionID string) (int, error) {
	return count(q, `SELECT count(*) FROM action_bindings WHERE domain = ? AND action_id = ?`, domain, actionID)
}
