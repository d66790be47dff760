package controllers

import (
	"strings"
	"testing"

	"github.com/tenantops/identity-operator/internal/identity"
)

// bindingsOf is a trigger's bindings from "id" or "id=display name" entries.
func bindingsOf(entries ...string) []identity.TriggerBinding {
	out := make([]identity.TriggerBinding, 0, len(entries))
	for _, e := range entries {
		id, name, ok := strings.Cut(e, "=")
		if !ok {
			name = id
		}
		out = append(out, identity.TriggerBinding{ID: "b-" + id, DisplayName: name, Action: identity.Action{ID: id}})
	}
	return out
}

func updateIDs(u []identity.BindingUpdate) string {
	if u == nil {
		return "(no change)"
	}
	ids := make([]string, 0, len(u))
	for _, b := range u {
		ids = append(ids, b.Ref.Value+"="+b.DisplayName)
	}
	return strings.Join(ids, " ")
}

func TestPlaceBindingMovesOnlyItselfAndKeepsForeignBindingsInOrder(t *testing.T) {
	// The operator manages a (order 10), b (order 5), c (order 10, after a
	// by name); f1, f2, f3 are someone else's.
	keys := map[string]bindingKey{"a": {10, "a"}, "b": {5, "b"}, "c": {10, "c"}}
	neighbours := func(self string) map[string]bindingKey {
		out := map[string]bindingKey{}
		for id, k := range keys {
			if id != self {
				out[id] = k
			}
		}
		return out
	}
	tests := []struct {
		name    string
		current []identity.TriggerBinding
		self    string
		only    []string // neighbours that hold an action (default: all others)
		want    string
	}{
		{"a first binding goes after the foreign ones", bindingsOf("f1", "f2"), "a", []string{}, "f1=f1 f2=f2 a=a"},
		{"after the last neighbour that sorts before it", bindingsOf("f1", "b", "f2"), "a", nil, "f1=f1 b=b a=a f2=f2"},
		{"before the first neighbour that sorts after it", bindingsOf("f1", "a", "f2"), "b", nil, "f1=f1 b=b a=a f2=f2"},
		{"equal orders go by name", bindingsOf("c", "f1"), "a", nil, "a=a c=c f1=f1"},
		{"in place: nothing to write", bindingsOf("f1", "b", "f2", "a", "f3"), "a", nil, "(no change)"},
		{"in place among foreign bindings it does not manage", bindingsOf("a", "f1"), "a", []string{}, "(no change)"},
		{"out of place: moved, the foreign order kept", bindingsOf("a", "f2", "b", "f1"), "a", nil, "f2=f2 b=b a=a f1=f1"},
		{"bound twice: once", bindingsOf("a", "f1", "a"), "a", []string{}, "f1=f1 a=a"},
		{"a new display name keeps the place", bindingsOf("f1", "a=old", "f2"), "a", []string{}, "f1=f1 a=a f2=f2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := neighbours(tt.self)
			if tt.only != nil {
				n = map[string]bindingKey{}
				for _, id := range tt.only {
					n[id] = keys[id]
				}
			}
			got := updateIDs(placeBinding(tt.current, tt.self, tt.self, keys[tt.self], n))
			if got != tt.want {
				t.Errorf("placeBinding = %s\nwant          %s", got, tt.want)
			}
		})
	}
}

func TestPlaceBindingConvergesWhateverOrderTheActionsPlaceThemselvesIn(t *testing.T) {
	keys := map[string]bindingKey{"a": {10, "a"}, "b": {5, "b"}, "c": {10, "c"}}
	for _, order := range [][]string{{"a", "b", "c"}, {"c", "b", "a"}, {"b", "c", "a"}, {"a", "c", "b"}} {
		list := bindingsOf("f1", "f2")
		for round := 0; round < 2; round++ {
			for _, self := range order {
				n := map[string]bindingKey{}
				for id, k := range keys {
					if id != self {
						n[id] = k
					}
				}
				if u := placeBinding(list, self, self, keys[self], n); u != nil {
					if round == 1 {
						t.Errorf("order %v: %s moved again in the second round", order, self)
					}
					next := make([]string, 0, len(u))
					for _, b := range u {
						next = append(next, b.Ref.Value)
					}
					list = bindingsOf(next...)
				}
			}
		}
		var ids []string
		for _, b := range list {
			ids = append(ids, b.Action.ID)
		}
		if got := strings.Join(ids, " "); got != "f1 f2 b a c" {
			t.Errorf("order %v: %s, want f1 f2 b a c", order, got)
		}
	}
}
