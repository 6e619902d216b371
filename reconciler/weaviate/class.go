package weaviate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fsgit/fsgit/reconciler"
)

// ClassSpec is the spec of a weaviate.class resource.
type ClassSpec struct {
	// URL is Weaviate's base URL.
	URL string `json:"url"`
	// APIKey, when set, is sent as a bearer token.
	APIKey *reconciler.SecretRef `json:"apiKey,omitempty"`
	// Class is the class name.
	Class string `json:"class"`
	// Description describes the class.
	Description string `json:"description,omitempty"`
	// Vectorizer is the vectorizer module, "none" for none.
	Vectorizer string `json:"vectorizer"`
	// ModuleConfig is the class's module configuration, free JSON.
	ModuleConfig map[string]any `json:"moduleConfig,omitempty"`
	// Properties are the class's properties.
	Properties []Property `json:"properties"`
	// InvertedIndexConfig is the inverted index configuration, free JSON.
	InvertedIndexConfig map[string]any `json:"invertedIndexConfig,omitempty"`
	// Ensure is "present" or "absent" (deletes the class and its objects).
	Ensure reconciler.Ensure `json:"ensure"`
}

// Property is one property of a class.
type Property struct {
	// Name is the property's name.
	Name string `json:"name"`
	// DataType is Weaviate's data type list, e.g. ["text"].
	DataType []string `json:"dataType"`
	// Description describes the property.
	Description string `json:"description,omitempty"`
	// Tokenization is word, lowercase, whitespace or field (text only).
	Tokenization string `json:"tokenization,omitempty"`
	// ModuleConfig is the property's module configuration, free JSON.
	ModuleConfig map[string]any `json:"moduleConfig,omitempty"`
}

// Class is the weaviate.class kind.
type Class struct {
	// ReadyTimeout bounds the wait for /v1/.well-known/ready in a plan
	// (zero: 3 minutes). In noop one probe is made: an unreachable
	// Weaviate is reported, not waited for.
	ReadyTimeout time.Duration

	http *http.Client
}

var (
	_ reconciler.KindOf[ClassSpec]     = (*Class)(nil)
	_ reconciler.SpecPruner[ClassSpec] = (*Class)(nil)
)

// NewClass returns the weaviate.class kind.
func NewClass() *reconciler.Typed[ClassSpec] {
	return reconciler.NewTyped(&Class{http: &http.Client{Timeout: 30 * time.Second}})
}

// Kind returns "weaviate.class".
func (*Class) Kind() string { return "weaviate.class" }

// Check takes the class name from the ID when the spec has none and
// refuses a property declared twice (Weaviate compares property names
// without regard to case of the first letter, which the schema does not
// say). Names, the url, dataType and tokenization are the schema's
// (#WeaviateClass).
func (*Class) Check(r *reconciler.Resource, s *ClassSpec) error {
	if s.Class == "" {
		s.Class = r.Name()
	}
	seen := map[string]bool{}
	for _, p := range s.Properties {
		if seen[propKey(p.Name)] {
			return fmt.Errorf("validating %s: property %q declared twice", r.ID, p.Name)
		}
		seen[propKey(p.Name)] = true
	}
	return nil
}

// propKey is how Weaviate stores a property name: first letter lower-case.
func propKey(name string) string {
	r, n := utf8.DecodeRuneInString(name)
	return string(unicode.ToLower(r)) + name[n:]
}

// normType maps deprecated data types to what Weaviate stores for them.
func normType(t []string) []string {
	out := make([]string, len(t))
	for i, x := range t {
		switch x {
		case "string":
			x = "text"
		case "string[]":
			x = "text[]"
		}
		out[i] = x
	}
	return out
}

func (k *Class) client(ctx context.Context, env *reconciler.Env, s *ClassSpec) (*api, error) {
	a := &api{http: k.http, base: s.URL}
	if a.http == nil {
		a.http = &http.Client{Timeout: 30 * time.Second}
	}
	if s.APIKey != nil && !s.APIKey.IsZero() {
		if env.Secrets == nil {
			return nil, fmt.Errorf("class %s has an apiKey but this run has no secret provider", s.Class)
		}
		key, err := env.Secrets.Resolve(ctx, *s.APIKey)
		if err != nil {
			return nil, fmt.Errorf("resolving the apiKey of class %s: %w", s.Class, err)
		}
		a.apiKey = &key
	}
	return a, nil
}

// observe waits for Weaviate and reads the class; nil when it is missing.
// In noop an unready Weaviate returns notReady instead of waiting.
func (k *Class) observe(ctx context.Context, env *reconciler.Env, a *api, s *ClassSpec) (cls map[string]any, notReady error, err error) {
	if env.Noop {
		if err := a.ready(ctx); err != nil {
			return nil, err, nil
		}
	} else {
		timeout := k.ReadyTimeout
		if timeout <= 0 {
			timeout = 3 * time.Minute
		}
		if err := a.waitReady(ctx, timeout); err != nil {
			return nil, nil, err
		}
	}
	var out map[string]any
	err = a.do(ctx, http.MethodGet, classPath(s.Class), nil, &out)
	if errors.Is(err, errNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading class %s: %w", s.Class, err)
	}
	if out == nil { // some versions answer 200 with an empty body for a missing class
		return nil, nil, nil
	}
	return out, nil, nil
}

// Plan observes the class and diffs it against the spec.
func (k *Class) Plan(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *ClassSpec) (*reconciler.Plan, error) {
	a, err := k.client(ctx, env, s)
	if err != nil {
		return nil, err
	}
	cur, notReady, err := k.observe(ctx, env, a, s)
	if err != nil {
		return nil, err
	}
	plan := &reconciler.Plan{Observed: map[string]string{"present": fmt.Sprint(cur != nil)}}
	if notReady != nil {
		// Noop before the container exists: say what would happen.
		plan.Observed["present"] = "unknown"
		if !s.Ensure.Absent() {
			plan.Action = reconciler.ActionCreate
			plan.Changes = []reconciler.Change{{Field: "class", After: s.Class + " (weaviate not reachable now, so not observed: " + notReady.Error() + ")", Class: reconciler.Safe}}
		}
		return plan, nil
	}
	if cur != nil {
		plan.Observed["vectorizer"] = str(cur["vectorizer"])
		plan.Observed["properties"] = strings.Join(propNames(cur), ",")
	}
	if s.Ensure.Absent() {
		if cur != nil {
			plan.Action = reconciler.ActionDelete
			plan.Changes = []reconciler.Change{{Field: "class", Before: s.Class, After: "(deleted with all its objects)", Class: reconciler.Destructive}}
			plan.Apply = func(ctx context.Context) error { return deleteClass(ctx, a, s.Class) }
		}
		return plan, nil
	}
	if cur == nil {
		plan.Action = reconciler.ActionCreate
		plan.Changes = []reconciler.Change{{Field: "class", After: s.Class, Class: reconciler.Safe}}
		plan.Apply = func(ctx context.Context) error { return createClass(ctx, a, s) }
		return plan, nil
	}
	d := diffClass(s, cur)
	if len(d.changes) == 0 {
		return plan, nil
	}
	plan.Action = reconciler.ActionUpdate
	plan.Changes = d.changes
	allow := r.AllowDestroy
	plan.Apply = func(ctx context.Context) error {
		if d.recreate {
			if !allow {
				// The engine holds destructive plans; this is a second
				// guard. Do the safe part only.
				return d.applySafe(ctx, a, s, cur)
			}
			if err := deleteClass(ctx, a, s.Class); err != nil {
				return err
			}
			return createClass(ctx, a, s)
		}
		return d.applySafe(ctx, a, s, cur)
	}
	return plan, nil
}

// classBody is the JSON Weaviate takes to create the class.
func classBody(s *ClassSpec) map[string]any {
	body := map[string]any{"class": s.Class, "vectorizer": s.Vectorizer}
	if s.Description != "" {
		body["description"] = s.Description
	}
	if s.ModuleConfig != nil {
		body["moduleConfig"] = s.ModuleConfig
	}
	if s.InvertedIndexConfig != nil {
		body["invertedIndexConfig"] = s.InvertedIndexConfig
	}
	props := make([]map[string]any, 0, len(s.Properties))
	for _, p := range s.Properties {
		props = append(props, propertyBody(p))
	}
	body["properties"] = props
	return body
}

func propertyBody(p Property) map[string]any {
	b := map[string]any{"name": p.Name, "dataType": p.DataType}
	if p.Description != "" {
		b["description"] = p.Description
	}
	if p.Tokenization != "" {
		b["tokenization"] = p.Tokenization
	}
	if p.ModuleConfig != nil {
		b["moduleConfig"] = p.ModuleConfig
	}
	return b
}

func createClass(ctx context.Context, a *api, s *ClassSpec) error {
	if err := a.do(ctx, http.MethodPost, "/v1/schema", classBody(s), nil); err != nil {
		return fmt.Errorf("creating class %s: %w", s.Class, err)
	}
	return nil
}

func deleteClass(ctx context.Context, a *api, class string) error {
	if err := a.do(ctx, http.MethodDelete, classPath(class), nil, nil); err != nil && !errors.Is(err, errNotFound) {
		return fmt.Errorf("deleting class %s: %w", class, err)
	}
	return nil
}

// classDiff is what differs and how to converge it.
type classDiff struct {
	changes  []reconciler.Change
	recreate bool       // something only a delete and create can change
	addProps []Property // safe: declared properties that are missing
	update   bool       // safe: mutable settings differ (PUT the class)
}

// Reasons given for changes Weaviate cannot make in place.
const (
	whyRecreate = "Weaviate cannot change this in place: the class must be deleted and created again, losing its objects"
	whyNoDelete = "Weaviate cannot delete a property: the class must be deleted and created again, losing its objects"
)

// mutableInverted are the invertedIndexConfig keys Weaviate updates in
// place.
var mutableInverted = map[string]bool{"bm25": true, "stopwords": true, "cleanupIntervalSeconds": true}

func diffClass(s *ClassSpec, cur map[string]any) *classDiff {
	d := &classDiff{}
	destructive := func(field, before, after, why string) {
		d.recreate = true
		d.changes = append(d.changes, reconciler.Change{Field: field, Before: before, After: after + " (" + why + ")", Class: reconciler.Destructive})
	}
	safe := func(field, before, after string) {
		d.changes = append(d.changes, reconciler.Change{Field: field, Before: before, After: after, Class: reconciler.Safe})
	}
	if v := str(cur["vectorizer"]); v != s.Vectorizer {
		destructive("vectorizer", v, s.Vectorizer, whyRecreate)
	}
	if v := str(cur["description"]); s.Description != "" && v != s.Description {
		safe("description", v, s.Description)
		d.update = true
	}
	curMC, _ := cur["moduleConfig"].(map[string]any)
	for _, mod := range slices.Sorted(maps.Keys(s.ModuleConfig)) {
		if !subset(s.ModuleConfig[mod], curMC[mod]) {
			destructive("moduleConfig."+mod, compact(curMC[mod]), compact(s.ModuleConfig[mod]), whyRecreate)
		}
	}
	curInv, _ := cur["invertedIndexConfig"].(map[string]any)
	for _, key := range slices.Sorted(maps.Keys(s.InvertedIndexConfig)) {
		if subset(s.InvertedIndexConfig[key], curInv[key]) {
			continue
		}
		if mutableInverted[key] {
			safe("invertedIndexConfig."+key, compact(curInv[key]), compact(s.InvertedIndexConfig[key]))
			d.update = true
		} else {
			destructive("invertedIndexConfig."+key, compact(curInv[key]), compact(s.InvertedIndexConfig[key]), whyRecreate)
		}
	}
	have := map[string]map[string]any{}
	for _, p := range props(cur) {
		have[str(p["name"])] = p
	}
	declared := map[string]bool{}
	for _, p := range s.Properties {
		name := propKey(p.Name)
		declared[name] = true
		hp, ok := have[name]
		if !ok {
			safe("properties."+p.Name, "", "add "+strings.Join(p.DataType, ","))
			d.addProps = append(d.addProps, p)
			continue
		}
		if ht, wt := strList(hp["dataType"]), normType(p.DataType); !slices.Equal(normType(ht), wt) {
			destructive("properties."+p.Name+".dataType", strings.Join(ht, ","), strings.Join(p.DataType, ","), whyRecreate)
		}
		if p.Tokenization != "" && str(hp["tokenization"]) != p.Tokenization {
			destructive("properties."+p.Name+".tokenization", str(hp["tokenization"]), p.Tokenization, whyRecreate)
		}
		if p.ModuleConfig != nil && !subset(p.ModuleConfig, hp["moduleConfig"]) {
			destructive("properties."+p.Name+".moduleConfig", compact(hp["moduleConfig"]), compact(p.ModuleConfig), whyRecreate)
		}
		if p.Description != "" && str(hp["description"]) != p.Description {
			safe("properties."+p.Name+".description", str(hp["description"]), p.Description)
			d.update = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(have)) {
		if !declared[name] {
			destructive("properties."+name, strings.Join(strList(have[name]["dataType"]), ","), "(not declared)", whyNoDelete)
		}
	}
	return d
}

// applySafe adds missing properties and updates mutable settings.
func (d *classDiff) applySafe(ctx context.Context, a *api, s *ClassSpec, cur map[string]any) error {
	for _, p := range d.addProps {
		if err := a.do(ctx, http.MethodPost, classPath(s.Class)+"/properties", propertyBody(p), nil); err != nil {
			return fmt.Errorf("adding property %s to class %s: %w", p.Name, s.Class, err)
		}
	}
	if !d.update {
		return nil
	}
	// PUT takes the whole class: re-read it (properties were just added)
	// and change only the mutable settings.
	var fresh map[string]any
	if err := a.do(ctx, http.MethodGet, classPath(s.Class), nil, &fresh); err != nil {
		return fmt.Errorf("reading class %s: %w", s.Class, err)
	}
	if s.Description != "" {
		fresh["description"] = s.Description
	}
	if inv, ok := fresh["invertedIndexConfig"].(map[string]any); ok {
		for key, v := range s.InvertedIndexConfig {
			if mutableInverted[key] {
				inv[key] = merge(inv[key], v)
			}
		}
	}
	descs := map[string]string{}
	for _, p := range s.Properties {
		if p.Description != "" {
			descs[propKey(p.Name)] = p.Description
		}
	}
	for _, p := range props(fresh) {
		if desc, ok := descs[str(p["name"])]; ok {
			p["description"] = desc
		}
	}
	if err := a.do(ctx, http.MethodPut, classPath(s.Class), fresh, nil); err != nil {
		return fmt.Errorf("updating class %s: %w", s.Class, err)
	}
	return nil
}

// PlanDelete deletes a class that left the catalog: destructive.
func (k *Class) PlanDelete(ctx context.Context, env *reconciler.Env, r *reconciler.Resource, s *ClassSpec) (*reconciler.Plan, error) {
	gone := *s
	gone.Ensure = reconciler.EnsureAbsent
	return k.Plan(ctx, env, r, &gone)
}

// subset reports whether every field of want is in have with the same
// value (maps compared key by key, recursively; everything else by value).
// Weaviate fills in defaults, so the observed class has more than the spec.
func subset(want, have any) bool {
	wm, ok := want.(map[string]any)
	if !ok {
		return reflect.DeepEqual(normJSON(want), normJSON(have))
	}
	hm, ok := have.(map[string]any)
	if !ok {
		return false
	}
	for k, v := range wm {
		if !subset(v, hm[k]) {
			return false
		}
	}
	return true
}

// merge returns have with want's fields set over it, recursively.
func merge(have, want any) any {
	wm, ok := want.(map[string]any)
	hm, ok2 := have.(map[string]any)
	if !ok || !ok2 {
		return want
	}
	for k, v := range wm {
		hm[k] = merge(hm[k], v)
	}
	return hm
}

// normJSON round-trips v through JSON so that ints and float64s compare.
func normJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return v
	}
	return out
}

func compact(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func strList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		out = append(out, str(x))
	}
	return out
}

func props(cls map[string]any) []map[string]any {
	l, _ := cls["properties"].([]any)
	out := make([]map[string]any, 0, len(l))
	for _, p := range l {
		if m, ok := p.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func propNames(cls map[string]any) []string {
	var out []string
	for _, p := range props(cls) {
		out = append(out, str(p["name"]))
	}
	slices.Sort(out)
	return out
}
