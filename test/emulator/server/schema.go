package server

import (
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// schema is the little JSON Schema subset the platform's request bodies
// use. The platform validates bodies with z-schema and answers its first
// error as `Payload validation error: '<z-schema message>' on property
// <path>.`, so validate returns the part after "Payload validation error: ".
type schema struct {
	typ      string // string, boolean, integer, number, array, object or "" (anything)
	nullable bool   // null is a value (inside objects; top-level settings keys take null anyway)
	enum     []string
	format   string // see formats
	minimum  *float64
	maximum  *float64
	minLen   int
	maxLen   int
	minItems int
	maxItems int
	unique   bool
	items    *schema
	props    map[string]*schema
	values   *schema // the schema of properties not in props, when set
	required []string
	minProps int
	open     bool // additional properties allowed
}

func num(f float64) *float64 { return &f }

// obj is an object schema that allows no other properties.
func obj(props map[string]*schema) *schema { return &schema{typ: "object", props: props} }

var (
	tString  = &schema{typ: "string"}
	tBool    = &schema{typ: "boolean"}
	tObject  = &schema{typ: "object", open: true}
	tStrings = &schema{typ: "array", items: tString}
)

// formats are the string formats the platform's schemas name, checked the
// way a careful platform would (the exact rules are not published).
var formats = map[string]func(string) bool{
	"absolute-uri-or-empty": func(s string) bool { return s == "" || isAbsoluteURI(s) },
	"absolute-https-uri-or-empty": func(s string) bool {
		if s == "" {
			return true
		}
		u, err := url.Parse(s)
		return err == nil && u.Scheme == "https" && u.Host != "" && u.Fragment == "" && !strings.Contains(s, "#")
	},
	"email-or-empty": func(s string) bool {
		if s == "" {
			return true
		}
		a, err := mail.ParseAddress(s)
		return err == nil && a.Address == s
	},
	"url": isAbsoluteURI,
}

func isAbsoluteURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Host != "" || u.Opaque != "")
}

// validate checks v against s; path is the dotted property path ("" at the
// top). It returns "" or the validation detail of the first error.
func (s *schema) validate(path string, v any) string {
	on := func(msg string) string {
		if path == "" {
			return "'" + msg + "'"
		}
		return "'" + msg + "' on property " + path
	}
	if v == nil {
		if s.nullable || s.typ == "" {
			return ""
		}
		return on("Expected type " + s.typ + " but found type null")
	}
	if s.typ != "" && !hasType(s.typ, v) {
		return on(fmt.Sprintf("Expected type %s but found type %s", s.typ, typeName(v)))
	}
	switch x := v.(type) {
	case string:
		if s.enum != nil && !slices.Contains(s.enum, x) {
			return on("No enum match for: " + x)
		}
		if n := len([]rune(x)); s.maxLen > 0 && n > s.maxLen {
			return on(fmt.Sprintf("String is too long (%d chars), maximum %d", n, s.maxLen))
		} else if n < s.minLen {
			return on(fmt.Sprintf("String is too short (%d chars), minimum %d", n, s.minLen))
		}
		if check, ok := formats[s.format]; ok && !check(x) {
			return on("Object didn't pass validation for format " + s.format + ": " + x)
		}
	case int64, float64, int:
		f := toFloat(x)
		if s.minimum != nil && f < *s.minimum {
			return on(fmt.Sprintf("Value %s is less than minimum %s", fmtNum(f), fmtNum(*s.minimum)))
		}
		if s.maximum != nil && f > *s.maximum {
			return on(fmt.Sprintf("Value %s is greater than maximum %s", fmtNum(f), fmtNum(*s.maximum)))
		}
	case []any:
		if len(x) < s.minItems {
			return on(fmt.Sprintf("Array is too short (%d), minimum %d", len(x), s.minItems))
		}
		if s.maxItems > 0 && len(x) > s.maxItems {
			return on(fmt.Sprintf("Array is too long (%d), maximum %d", len(x), s.maxItems))
		}
		if s.unique {
			for i := range x {
				for j := i + 1; j < len(x); j++ {
					if fmt.Sprint(x[i]) == fmt.Sprint(x[j]) {
						return on(fmt.Sprintf("Array items are not unique (indexes %d and %d)", i, j))
					}
				}
			}
		}
		if s.items != nil {
			for i, e := range x {
				if d := s.items.validate(join(path, strconv.Itoa(i)), e); d != "" {
					return d
				}
			}
		}
	case map[string]any:
		if len(x) < s.minProps {
			return on(fmt.Sprintf("Too few properties defined (%d), minimum %d", len(x), s.minProps))
		}
		for _, r := range s.required {
			if _, ok := x[r]; !ok {
				return on("Missing required property: " + r)
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p, known := s.props[k]
			if !known && s.values != nil {
				p, known = s.values, true
			}
			if !known {
				if s.open {
					continue
				}
				return on("Additional properties not allowed: " + k)
			}
			if d := p.validate(join(path, k), x[k]); d != "" {
				return d
			}
		}
	}
	return ""
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func hasType(t string, v any) bool {
	switch t {
	case "string":
		return isString(v)
	case "boolean":
		return isBool(v)
	case "integer":
		return isInteger(v)
	case "number":
		return isNumber(v)
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		return isObject(v)
	}
	return true
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case float64:
		return x
	}
	return math.NaN()
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// payloadError is the platform's 400 message for a detail from validate:
// the message ends with a period, as the platform's do
// ("Payload validation error: 'Additional properties not allowed: signupEnabled'.",
// https://github.com/auth0/auth0-java/issues/715).
func payloadError(detail string) string {
	msg := "Payload validation error: " + detail
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}
