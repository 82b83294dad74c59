// Package cfgkeys decodes a configuration section and names the key of
// whatever is wrong in it: a value of the wrong type, or a key its Go type
// does not read. Go's JSON decoder drops such keys without a word, so a
// mistyped section name (`admn:` for `admin:`) would turn a feature off
// silently; DESIGN.md asks that a wrong value fail start-up naming the key.
package cfgkeys

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/util"
)

// Decode unmarshals raw (JSON or YAML) into into, a pointer to a struct,
// and then Checks its keys. A value of the wrong type is named by its key:
// `ext_authz.shutdown_timeout: a number where a string belongs`.
func Decode(raw []byte, into any, section string) error {
	if err := util.Unmarshal(raw, into); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return err
		}
		where := join(section, te.Field)
		if where == "" {
			where = "the section"
		}
		return fmt.Errorf("%s: %s where %s belongs", where, found(te.Value), wanted(te.Type))
	}
	return Check(raw, into, section)
}

// found describes what the decoder met: "number 1.5", "array", "bool"...
func found(v string) string {
	switch {
	case strings.HasPrefix(v, "number "):
		return "the " + v
	case v == "array" || v == "object":
		return "an " + v
	case v == "bool":
		return "true or false"
	default:
		return "a " + v
	}
}

// wanted describes a Go type in the words of a configuration file.
func wanted(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t == rawMessage {
			return "an object"
		}
		return "a list"
	default:
		return "an object"
	}
}

// Check returns an error naming the first key of raw (JSON or YAML), in
// sorted order and at any depth, that the exported, json-tagged fields of
// into's type do not read: `store.postgres: unknown key "passwrd" (known:
// dsn)`, where section ("" or "ext_authz", say) leads the path. Keys match fields without regard to case, as the decoder matches
// them. json.RawMessage fields are sections parsed elsewhere, so their keys
// are not looked into. A raw that does not parse passes: the typed decode
// reports that error.
func Check(raw []byte, into any, section string) error {
	var doc any
	if err := util.Unmarshal(raw, &doc); err != nil {
		return nil
	}
	return walk(doc, reflect.TypeOf(into), section)
}

var rawMessage = reflect.TypeFor[json.RawMessage]()

func walk(doc any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	obj, ok := doc.(map[string]any)
	if !ok || t.Kind() != reflect.Struct || t == rawMessage {
		return nil
	}
	fields := fieldsOf(t)
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := lookup(fields, k)
		if !ok {
			return fmt.Errorf("%sunknown key %q (known: %s)", at(path), k, strings.Join(names(fields), ", "))
		}
		if err := walk(obj[k], f.typ, join(path, f.name)); err != nil {
			return err
		}
	}
	return nil
}

type field struct {
	name string
	typ  reflect.Type
}

func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		fs = append(fs, field{name, f.Type})
	}
	return fs
}

// lookup prefers an exact match, then one that differs in case only.
func lookup(fs []field, key string) (field, bool) {
	for _, f := range fs {
		if f.name == key {
			return f, true
		}
	}
	for _, f := range fs {
		if strings.EqualFold(f.name, key) {
			return f, true
		}
	}
	return field{}, false
}

func names(fs []field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.name
	}
	sort.Strings(out)
	return out
}

func at(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

func join(path, name string) string {
	if path == "" || name == "" {
		return path + name
	}
	return path + "." + name
}
