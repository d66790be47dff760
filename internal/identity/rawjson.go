package identity

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

// Some platform objects (connection options above all) are replaced whole by a PATCH, so
// a client that drops a key it does not model would erase what the platform or another
// tool set. These helpers let a typed struct keep every unknown key as raw JSON and write
// it back unchanged.

// knownKeysCache maps a struct type to the JSON names of its fields.
var knownKeysCache sync.Map // reflect.Type -> map[string]bool

func knownKeys(t reflect.Type) map[string]bool {
	if v, ok := knownKeysCache.Load(t); ok {
		return v.(map[string]bool)
	}
	keys := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		keys[name] = true
	}
	knownKeysCache.Store(t, keys)
	return keys
}

// unmarshalWithExtra decodes data into known (a pointer to a struct without custom
// (un)marshalers) and returns the keys the struct does not model.
func unmarshalWithExtra(data []byte, known any) (map[string]json.RawMessage, error) {
	if err := json.Unmarshal(data, known); err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	keys := knownKeys(reflect.TypeOf(known).Elem())
	var extra map[string]json.RawMessage
	for k, v := range all {
		if keys[k] {
			continue
		}
		if extra == nil {
			extra = map[string]json.RawMessage{}
		}
		extra[k] = v
	}
	return extra, nil
}

// marshalWithExtra encodes known (a struct without custom marshalers) and adds the extra
// keys it does not model. A modelled field wins over an extra key of the same name.
func marshalWithExtra(known any, extra map[string]json.RawMessage) ([]byte, error) {
	data, err := json.Marshal(known)
	if err != nil || len(extra) == 0 {
		return data, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	keys := knownKeys(reflect.TypeOf(known))
	for k, v := range extra {
		if keys[k] {
			continue
		}
		all[k] = v
	}
	return json.Marshal(all)
}
