package identity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// The Actions calls as they go on the wire: paths, queries, bodies, and what each answer
// becomes. The emulator tests show the same calls against the emulated platform.
func TestActionRequestsAreSentAsTheAPIExpects(t *testing.T) {
	type seen struct{ method, rawPath, query, body string }
	var got []seen
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, strings.TrimSpace(string(body))})
		action := map[string]any{"id": "a|1", "name": "password-change", "code": "exports.onExecutePostLogin = async () => {};",
			"status": "built", "all_changes_deployed": false, "secrets": []any{map[string]any{"name": "CLIENT_SECRET", "updated_at": "2026-12-03T00:00:00.000Z"}}}
		switch {
		case r.URL.Path == "/api/v2/actions/actions" && r.Method == http.MethodGet:
			writeJSON(w, 200, map[string]any{"actions": []any{
				map[string]any{"id": "a2", "name": "password-change-2"}, action}, "total": 2, "page": 0, "per_page": 100})
		case r.URL.Path == "/api/v2/actions/actions" && r.Method == http.MethodPost:
			writeJSON(w, 201, action)
		case strings.HasSuffix(r.URL.Path, "/deploy"):
			writeJSON(w, 202, map[string]any{"id": "v1", "action_id": "a|1", "number": 1, "deployed": true, "status": "built"})
		case strings.HasSuffix(r.URL.Path, "/bindings") && r.Method == http.MethodGet:
			writeJSON(w, 200, map[string]any{"bindings": []any{map[string]any{"id": "b1", "trigger_id": "post-login", "display_name": "x", "action": action}},
				"total": 1, "page": 0, "per_page": 100})
		case strings.HasSuffix(r.URL.Path, "/bindings"):
			writeJSON(w, 200, map[string]any{"bindings": []any{}})
		case r.Method == http.MethodDelete:
			writeAPIError(w, 404, "", "The action does not exist")
		default:
			writeJSON(w, 200, action)
		}
	})
	c := f.client(t, fastOptions())
	ctx := context.Background()

	found, err := c.FindActionByName(ctx, "password-change", "post-login")
	if err != nil || found.ID != "a|1" || found.Secrets[0].Name != "CLIENT_SECRET" {
		t.Fatalf("FindActionByName = %+v, %v: want the exact name", found, err)
	}
	if _, err := c.CreateAction(ctx, ActionCreate{Name: "password-change", Code: "exports.onExecutePostLogin = async () => {};", Runtime: "node22",
		SupportedTriggers: []ActionTrigger{{ID: "post-login", Version: "v3"}}, Secrets: []ActionSecret{{Name: "CLIENT_SECRET", Value: "v4lue"}}}); err != nil {
		t.Fatal(err)
	}
	code := "exports.onExecutePostLogin = async (event, api) => { api.access.deny('no'); };"
	if _, err := c.UpdateAction(ctx, "a|1", ActionUpdate{Code: &code, Secrets: &[]ActionSecret{}}); err != nil {
		t.Fatal(err)
	}
	v, err := c.DeployAction(ctx, "a|1")
	if err != nil || v.Number != 1 || !v.Deployed {
		t.Fatalf("DeployAction = %+v, %v", v, err)
	}
	bindings, err := c.ListTriggerBindings(ctx, "post-login")
	if err != nil || len(bindings) != 1 || bindings[0].Action.ID != "a|1" || bindings[0].DisplayName != "x" {
		t.Fatalf("ListTriggerBindings = %+v, %v", bindings, err)
	}
	if _, err := c.UpdateTriggerBindings(ctx, "post-login", []BindingUpdate{
		{Ref: BindingRef{Type: BindingRefActionID, Value: "a2"}, DisplayName: "foreign"},
		{Ref: BindingRef{Type: BindingRefActionID, Value: "a|1"}, DisplayName: "password-change"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAction(ctx, "a|1", true); err != nil {
		t.Fatalf("DeleteAction of a missing action = %v, want done", err)
	}

	want := []seen{
		{"GET", "/api/v2/actions/actions", "actionName=password-change&page=0&per_page=100&triggerId=post-login", ""},
		{"POST", "/api/v2/actions/actions", "", `{"name":"password-change","supported_triggers":[{"id":"post-login","version":"v3"}],"code":"exports.onExecutePostLogin = async () =\u003e {};","runtime":"node22","dependencies":[],"secrets":[{"name":"CLIENT_SECRET","value":"v4lue"}]}`},
		{"PATCH", "/api/v2/actions/actions/a%7C1", "", `{"code":"exports.onExecutePostLogin = async (event, api) =\u003e { api.access.deny('no'); };","secrets":[]}`},
		{"POST", "/api/v2/actions/actions/a%7C1/deploy", "", ""},
		{"GET", "/api/v2/actions/triggers/post-login/bindings", "page=0&per_page=100", ""},
		{"PATCH", "/api/v2/actions/triggers/post-login/bindings", "", `{"bindings":[{"ref":{"type":"action_id","value":"a2"},"display_name":"foreign"},{"ref":{"type":"action_id","value":"a|1"},"display_name":"password-change"}]}`},
		{"DELETE", "/api/v2/actions/actions/a%7C1", "force=true", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("requests:\n%q\nwant\n%q", got, want)
	}
}

func TestActionListsArePagedToTheEnd(t *testing.T) {
	var pages []string
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		page := r.URL.Query().Get("page")
		pages = append(pages, page)
		n := map[string]int{"0": 100, "1": 100, "2": 5}[page]
		bindings := make([]any, 0, n)
		for i := 0; i < n; i++ {
			bindings = append(bindings, map[string]any{"id": fmt.Sprintf("b%s-%d", page, i), "display_name": "d", "action": map[string]any{"id": "x"}})
		}
		writeJSON(w, 200, map[string]any{"bindings": bindings, "total": 205, "page": page, "per_page": 100})
	})
	got, err := f.client(t, fastOptions()).ListTriggerBindings(context.Background(), "post-login")
	if err != nil || len(got) != 205 {
		t.Fatalf("ListTriggerBindings = %d bindings, %v; want 205", len(got), err)
	}
	if strings.Join(pages, ",") != "0,1,2" {
		t.Errorf("pages read: %v", pages)
	}
}

func TestActionBuildFailuresQuoteThePlatform(t *testing.T) {
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/deploy"):
			writeAPIError(w, 400, "", "Cannot deploy an action that failed to build: Unexpected token (1:30)")
		case r.URL.Path == "/api/v2/actions/actions" && r.Method == http.MethodGet:
			writeJSON(w, 200, map[string]any{"actions": []any{}, "total": 0, "page": 0, "per_page": 100})
		default:
			writeJSON(w, 201, map[string]any{"id": "a1", "name": "broken", "status": "failed",
				"errors": []any{map[string]any{"id": "invalid_code", "msg": "Unexpected token (1:30)", "url": "https://example.com/docs"}}})
		}
	})
	c := f.client(t, fastOptions())
	ctx := context.Background()

	a, err := c.CreateAction(ctx, ActionCreate{Name: "broken", Code: "exports.onExecutePostLogin = async (event, api => {};"})
	if err != nil {
		t.Fatalf("CreateAction = %v: a draft that does not build is still created", err)
	}
	var build *ActionBuildFailedError
	if err := a.BuildError(); !errors.Is(err, ErrBuildFailed) || !errors.As(err, &build) || build.Message() != "Unexpected token (1:30)" {
		t.Fatalf("BuildError = %v", err)
	}
	if (&Action{Status: ActionStatusBuilt}).BuildError() != nil {
		t.Error("a built action has a build error")
	}

	_, err = c.DeployAction(ctx, "a1")
	if !errors.Is(err, ErrBuildFailed) || !errors.Is(err, ErrInvalid) || !errors.As(err, &build) ||
		!strings.Contains(build.Message(), "Unexpected token (1:30)") {
		t.Fatalf("DeployAction = %v, want a build failure quoting the platform", err)
	}

	if _, err := c.FindActionByName(ctx, "missing", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindActionByName of nothing = %v, want ErrNotFound", err)
	}
	if s := fmt.Sprintf("%v %+v %#v", ActionSecret{Name: "K", Value: "v4lue"}, ActionSecret{Name: "K", Value: "v4lue"},
		ActionSecret{Name: "K", Value: "v4lue"}); strings.Contains(s, "v4lue") {
		t.Errorf("a secret's value is printed: %s", s)
	}
}

func TestDeployIsNotSentAgainAfterAFailureItMayHaveCarriedOut(t *testing.T) {
	deploys := 0
	f := newFakePlatform(t, func(w http.ResponseWriter, r *http.Request) {
		deploys++
		writeAPIError(w, 503, "", "Service Unavailable")
	})
	_, err := f.client(t, fastOptions()).DeployAction(context.Background(), "a1")
	var ae *APIError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &ae) || ae.Attempts != 1 {
		t.Fatalf("DeployAction = %v, want ErrUnavailable after one attempt", err)
	}
	if deploys != 1 {
		t.Errorf("%d deploys sent, want 1: a second could make a second version", deploys)
	}
}
