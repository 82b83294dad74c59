package bundle

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"slices"
	"strings"

	"github.com/opa-pat/opa-pat/plugin/jsonkey"
	"github.com/opa-pat/opa-pat/plugin/token"
)

// SettingsSchema is the published JSON Schema (draft-07) of the settings file;
// docs/settings.schema.json is a copy of it and a test keeps the two equal.
//
//go:embed settings.schema.json
var SettingsSchema []byte

// ErrInvalidSettings is wrapped by every error that refuses a settings file.
var ErrInvalidSettings = errors.New("invalid settings")

// SettingsError lists every problem found in a settings file, each naming the
// field's path (e.g. organizations.octo-org.classic_access).
type SettingsError struct {
	Problems []string
}

func (e *SettingsError) Error() string {
	return "settings: " + strings.Join(e.Problems, "; ")
}

// Unwrap lets callers test errors.Is(err, ErrInvalidSettings).
func (e *SettingsError) Unwrap() error { return ErrInvalidSettings }

// schema is the subset of JSON Schema that settings.schema.json uses. Parsing
// refuses any other keyword, so the schema cannot grow a rule that this
// validator would silently ignore.
type schema struct {
	Ref                  string             `json:"$ref"`
	Types                []string           `json:"-"`
	Enum                 []any              `json:"enum"`
	Minimum              *json.Number       `json:"minimum"`
	Maximum              *json.Number       `json:"maximum"`
	Properties           map[string]*schema `json:"properties"`
	AdditionalProperties *schema            `json:"-"`
	ClosedProperties     bool               `json:"-"`
	Items                *schema            `json:"items"`
	Definitions          map[string]*schema `json:"definitions"`
}

// annotations are keywords that carry no validation rule.
var annotations = []string{"$schema", "$id", "title", "description"}

func (s *schema) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for k, v := range raw {
		var err error
		switch k {
		case "$ref":
			err = json.Unmarshal(v, &s.Ref)
		case "type":
			var one string
			if json.Unmarshal(v, &one) == nil {
				s.Types = []string{one}
			} else {
				err = json.Unmarshal(v, &s.Types)
			}
		case "enum":
			err = json.Unmarshal(v, &s.Enum)
		case "minimum":
			err = json.Unmarshal(v, &s.Minimum)
		case "maximum":
			err = json.Unmarshal(v, &s.Maximum)
		case "properties":
			err = json.Unmarshal(v, &s.Properties)
		case "additionalProperties":
			var closed bool
			if json.Unmarshal(v, &closed) == nil {
				s.ClosedProperties = !closed
			} else {
				err = json.Unmarshal(v, &s.AdditionalProperties)
			}
		case "items":
			err = json.Unmarshal(v, &s.Items)
		case "definitions":
			err = json.Unmarshal(v, &s.Definitions)
		default:
			if !slices.Contains(annotations, k) {
				return fmt.Errorf("unsupported schema keyword %q", k)
			}
		}
		if err != nil {
			return fmt.Errorf("schema keyword %q: %w", k, err)
		}
	}
	return nil
}

// settingsSchema is SettingsSchema, parsed once.
var settingsSchema = func() *schema {
	var s schema
	if err := json.Unmarshal(SettingsSchema, &s); err != nil {
		panic(fmt.Sprintf("bundle: settings.schema.json: %v", err))
	}
	return &s
}()

// ParseSettings decodes a settings file and validates it against the
// published schema and the cross-references the schema cannot express (an
// organization's enterprise must be defined). The result is the settings
// document as it goes into the bundle, at data.pat.settings.
func ParseSettings(b []byte) (map[string]any, error) {
	doc, err := decodeStrict(b)
	if err != nil {
		return nil, &SettingsError{Problems: []string{err.Error()}}
	}
	// First, before any message could quote them: settings go into bundles,
	// which every sidecar (and whoever reads the bundle server) downloads.
	if problems := checkPlain(doc, ""); len(problems) > 0 {
		return nil, &SettingsError{Problems: problems}
	}
	var problems []string
	v := validator{root: settingsSchema, problems: &problems}
	doc = v.validate(settingsSchema, doc, "")
	if len(problems) == 0 {
		problems = append(checkNames(doc), checkEnterprises(doc)...)
	}
	if len(problems) > 0 {
		return nil, &SettingsError{Problems: problems}
	}
	return doc.(map[string]any), nil
}

// checkPlain reports every key and string of the settings that looks like a
// personal access token (token.Hidden: a right checksum, a token's shape
// after a known prefix in any case, so a lower-cased one too, or a token cut
// short, a known prefix and 30 or more token characters with a capital or a
// digit, as the decision-log mask reads one), naming where it is and never
// what it is. No name of GitHub's has that shape.
func checkPlain(doc any, path string) []string {
	const plain = "looks like a personal access token; settings are published in bundles: never write a token in them"
	at := func(p string) string { return cmp.Or(p, "settings") }
	var problems []string
	switch v := doc.(type) {
	case string:
		if token.Hidden(v) {
			problems = append(problems, fmt.Sprintf("%s: %s", at(path), plain))
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if token.Hidden(k) {
				problems = append(problems, fmt.Sprintf("%s: a key %s", at(path), plain))
				continue
			}
			problems = append(problems, checkPlain(v[k], strings.TrimPrefix(path+"."+k, "."))...)
		}
	case []any:
		for i, e := range v {
			problems = append(problems, checkPlain(e, fmt.Sprintf("%s[%d]", at(path), i))...)
		}
	}
	return problems
}

// checkNames reports enterprise, organization and owner names that are not in
// lower case. GitHub compares these names without regard to case and the
// policy looks settings up by the lower-case name it is asked about, so a
// mixed-case key would silently never apply.
func checkNames(doc any) []string {
	top := doc.(map[string]any)
	ents, _ := top["enterprises"].(map[string]any)
	orgs, _ := top["organizations"].(map[string]any)
	var problems []string
	lowerCase := func(path, name string) {
		if lower := strings.ToLower(name); lower != name {
			problems = append(problems, fmt.Sprintf("%s: %q: names are compared in lower case; write %q", path, name, lower))
		}
	}
	for _, name := range sortedKeys(ents) {
		path := joinPath("enterprises", name)
		lowerCase(path, name)
		owners, _ := ents[name].(map[string]any)["owners"].([]any)
		for i, o := range owners {
			if login, ok := o.(string); ok {
				lowerCase(fmt.Sprintf("%s.owners[%d]", path, i), login)
			}
		}
	}
	for _, name := range sortedKeys(orgs) {
		lowerCase(joinPath("organizations", name), name)
	}
	return problems
}

// checkEnterprises reports organizations that name an undefined enterprise,
// and settings an organization inside an enterprise cannot have.
func checkEnterprises(doc any) []string {
	top := doc.(map[string]any)
	ents, _ := top["enterprises"].(map[string]any)
	orgs, _ := top["organizations"].(map[string]any)
	var problems []string
	for _, name := range sortedKeys(orgs) {
		org := orgs[name].(map[string]any)
		ent, ok := org["enterprise"].(string)
		if !ok {
			continue
		}
		if _, defined := ents[ent]; !defined {
			problems = append(problems, fmt.Sprintf("%s: %q is not an enterprise defined under enterprises (defined: %s)",
				joinPath(joinPath("organizations", name), "enterprise"), ent, listOrNone(sortedKeys(ents))))
		}
		// Rule 28: inside an enterprise the enterprise's setting applies;
		// the organization's own would be silently ignored.
		if _, set := org["exempt_administrators"]; set {
			problems = append(problems, fmt.Sprintf("%s: only an organization outside any enterprise sets it; %s belongs to %s, whose exempt_administrators applies",
				joinPath(joinPath("organizations", name), "exempt_administrators"), name, ent))
		}
	}
	return problems
}

type validator struct {
	root     *schema
	problems *[]string
}

func (v validator) fail(path, format string, args ...any) {
	if path == "" {
		path = "(top level)"
	}
	*v.problems = append(*v.problems, path+": "+fmt.Sprintf(format, args...))
}

// validate checks value against s and returns it normalized (integers
// written without a fraction or exponent).
func (v validator) validate(s *schema, value any, path string) any {
	if s.Ref != "" {
		name, ok := strings.CutPrefix(s.Ref, "#/definitions/")
		target := v.root.Definitions[name]
		if !ok || target == nil {
			panic(fmt.Sprintf("bundle: settings.schema.json: unresolvable $ref %q", s.Ref))
		}
		return v.validate(target, value, path)
	}
	if len(s.Types) > 0 {
		var matched bool
		value, matched = matchType(s.Types, value)
		if !matched {
			v.fail(path, "%s is not %s", render(value), typeNames(s.Types))
			return value
		}
	}
	if s.Enum != nil && !slices.ContainsFunc(s.Enum, func(e any) bool { return jsonEqual(e, value) }) {
		names := make([]string, len(s.Enum))
		for i, e := range s.Enum {
			names[i] = fmt.Sprint(e)
		}
		v.fail(path, "%s is not one of %s", render(value), strings.Join(names, ", "))
		return value
	}
	if n, ok := value.(json.Number); ok {
		if s.Minimum != nil && compare(n, *s.Minimum) < 0 || s.Maximum != nil && compare(n, *s.Maximum) > 0 {
			v.fail(path, "%s is not between %s and %s", n, boundOr(s.Minimum, "-inf"), boundOr(s.Maximum, "inf"))
		}
	}
	switch x := value.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			sub := s.Properties[k]
			if sub == nil {
				sub = s.AdditionalProperties
			}
			if sub == nil {
				if s.ClosedProperties {
					v.fail(joinPath(path, k), "unknown field (known: %s)", strings.Join(sortedKeys(s.Properties), ", "))
				}
				continue
			}
			x[k] = v.validate(sub, x[k], joinPath(path, k))
		}
	case []any:
		if s.Items != nil {
			for i := range x {
				x[i] = v.validate(s.Items, x[i], fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	return value
}

// matchType reports whether value has one of the JSON Schema types; an
// integer-valued number (30 or 30.0) is an integer and is returned as "30".
func matchType(types []string, value any) (any, bool) {
	for _, t := range types {
		switch t {
		case "object":
			if _, ok := value.(map[string]any); ok {
				return value, true
			}
		case "array":
			if _, ok := value.([]any); ok {
				return value, true
			}
		case "string":
			if _, ok := value.(string); ok {
				return value, true
			}
		case "boolean":
			if _, ok := value.(bool); ok {
				return value, true
			}
		case "null":
			if value == nil {
				return value, true
			}
		case "number":
			if _, ok := value.(json.Number); ok {
				return value, true
			}
		case "integer":
			if n, ok := value.(json.Number); ok {
				if r, ok := new(big.Rat).SetString(n.String()); ok && r.IsInt() {
					return json.Number(r.Num().String()), true
				}
			}
		default:
			panic(fmt.Sprintf("bundle: settings.schema.json: unknown type %q", t))
		}
	}
	return value, false
}

func typeNames(types []string) string {
	names := make([]string, len(types))
	for i, t := range types {
		switch t {
		case "object", "array", "integer":
			names[i] = "an " + t
		case "null":
			names[i] = "null"
		default:
			names[i] = "a " + t
		}
	}
	return strings.Join(names, " or ")
}

func compare(a, b json.Number) int {
	x, _ := new(big.Rat).SetString(a.String())
	y, _ := new(big.Rat).SetString(b.String())
	return x.Cmp(y)
}

func boundOr(n *json.Number, def string) string {
	if n == nil {
		return def
	}
	return n.String()
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// render writes a value as JSON for a message, shortened when long.
func render(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// decodeStrict decodes one JSON value, keeping numbers exact and refusing
// duplicate object keys (which encoding/json would silently collapse) and
// trailing data. A byte that is not UTF-8, or a lone UTF-16 surrogate
// ("\ud800"), is refused first, naming where it is (jsonkey.Check): Go's
// reader, and OPA's, would keep U+FFFD in its place without a word, so a
// name in the settings would be published as something else than the file
// says ("a\ud800" and "a\udc00" as one name).
func decodeStrict(b []byte) (any, error) {
	if json.Valid(b) { // otherwise the decoder names the syntax error
		if err := jsonkey.Check(b); err != nil {
			return nil, err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeValue(dec, "")
	if err != nil {
		return nil, jsonkey.Located(b, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the top-level value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, path string) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("invalid JSON: %w", err)
				}
				k := kt.(string)
				if _, dup := obj[k]; dup {
					return nil, fmt.Errorf("%s: duplicate field", joinPath(path, k))
				}
				if obj[k], err = decodeValue(dec, joinPath(path, k)); err != nil {
					return nil, err
				}
			}
			_, err := dec.Token()
			return obj, err
		case '[':
			arr := []any{}
			for dec.More() {
				e, err := decodeValue(dec, fmt.Sprintf("%s[%d]", path, len(arr)))
				if err != nil {
					return nil, err
				}
				arr = append(arr, e)
			}
			_, err := dec.Token()
			return arr, err
		}
	}
	return tok, nil
}
