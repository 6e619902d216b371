package weaviate

import (
	"testing"

	"github.com/fsgit/fsgit/reconciler"
)

func TestClass_Preview(t *testing.T) {
	cls := func(kv ...any) *reconciler.Resource {
		m := map[string]any{"url": "http://127.0.0.1:8080", "class": "FeatureMetadata", "vectorizer": "text2vec-transformers",
			"properties": []map[string]any{{"name": "name", "dataType": []string{"text"}}}, "ensure": "present"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return res(t, "weaviate.class:FeatureMetadata", m)
	}
	two := []map[string]any{{"name": "name", "dataType": []string{"text"}}, {"name": "owner", "dataType": []string{"text"}}}
	tests := []struct {
		name     string
		old, new *reconciler.Resource
		class    reconciler.Class
		effect   string
	}{
		{"create", nil, cls(), reconciler.Safe, "create class"},
		{"delete", cls(), nil, reconciler.Destructive, "delete class and its objects"},
		{"same", cls(), cls(), reconciler.Safe, ""},
		{"add property", cls(), cls("properties", two), reconciler.Safe, "add properties"},
		{"drop property", cls("properties", two), cls(), reconciler.Destructive, "recreate class (its objects are lost)"},
		{"vectorizer", cls(), cls("vectorizer", "none"), reconciler.Destructive, "recreate class (its objects are lost)"},
		{"string is text", cls(), cls("properties", []map[string]any{{"name": "name", "dataType": []string{"string"}}}), reconciler.Safe, ""},
		{"absent", cls(), cls("ensure", "absent"), reconciler.Destructive, "delete class and its objects"},
	}
	k := NewClass()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, e := k.Preview(tc.old, tc.new)
			if c != tc.class || e != tc.effect {
				t.Errorf("Preview = %s %q, want %s %q", c, e, tc.class, tc.effect)
			}
		})
	}
}

func TestSubset(t *testing.T) {
	have := map[string]any{"bm25": map[string]any{"b": 0.75, "k1": 1.2}, "stopwords": map[string]any{"preset": "en"}}
	tests := []struct {
		name string
		want any
		ok   bool
	}{
		{"empty", map[string]any{}, true},
		{"nested equal", map[string]any{"bm25": map[string]any{"b": 0.75}}, true},
		{"int vs float", map[string]any{"bm25": map[string]any{"k1": 1.2}}, true},
		{"differs", map[string]any{"bm25": map[string]any{"b": 0.7}}, false},
		{"missing key", map[string]any{"cleanupIntervalSeconds": 60}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := subset(tc.want, have); got != tc.ok {
				t.Errorf("subset = %v, want %v", got, tc.ok)
			}
		})
	}
}
