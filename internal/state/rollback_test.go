package state

import (
	"errors"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc/jsondoctest"
	"github.com/fsgit/fsgit/reconciler"
)

// TestStore_KeptCatalogs: the last N applied catalogs are kept whole,
// newest first, found by full or short revision; older ones are dropped,
// except the pinned one; they and the pin survive a reopen.
func TestStore_KeptCatalogs(t *testing.T) {
	s := openTemp(t, Options{})
	path := s.Path()
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	cat := func(rev string) *reconciler.Catalog {
		return &reconciler.Catalog{Node: "n1", Revision: rev, Resources: []reconciler.Resource{{ID: reconciler.ID("file:/" + rev)}}}
	}
	for _, rev := range []string{"aaaaaaa1", "bbbbbbb2", "ccccccc3"} {
		if err := s.KeepCatalog(cat(rev), at, 2); err != nil {
			t.Fatal(err)
		}
		if rev == "aaaaaaa1" {
			if err := s.SetPin(&Pin{Revision: rev, By: "alice", Reason: "bad deploy", Since: at}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.KeepCatalog(cat("ddddddd4"), at, 2); err != nil {
		t.Fatal(err)
	}
	list, err := s.KeptCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	var revs []string
	for _, k := range list {
		revs = append(revs, k.Revision)
	}
	if len(revs) != 3 || revs[0] != "ddddddd4" || revs[1] != "ccccccc3" || revs[2] != "aaaaaaa1" {
		t.Fatalf("kept %v, want the two newest and the pinned one", revs)
	}
	if _, err := s.KeptCatalog("bbbbbbb2"); !errors.Is(err, ErrNotKept) {
		t.Fatalf("dropped catalog: %v, want ErrNotKept", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.KeptCatalog("ccccccc")
	if err != nil || c.Revision != "ccccccc3" || c.Resources[0].ID != "file:/ccccccc3" {
		t.Fatalf("by short revision: %+v, %v", c, err)
	}
	p, err := s.Pin()
	if err != nil || p == nil || p.Revision != "aaaaaaa1" || p.Reason != "bad deploy" {
		t.Fatalf("pin = %+v, %v", p, err)
	}
}

// TestOperatorDocs_roundTrip: the holds, pin and kept catalogs the state
// keeps read back exactly, every field filled.
func TestOperatorDocs_roundTrip(t *testing.T) {
	jsondoctest.RoundTrip[Hold](t, jsondoctest.Options{})
	jsondoctest.RoundTrip[Pin](t, jsondoctest.Options{})
	jsondoctest.RoundTrip[KeptCatalog](t, jsondoctest.Options{})
}
