package status

import (
	"reflect"
	"testing"
	"time"

	"github.com/fsgit/fsgit/internal/jsondoc/jsondoctest"
	"github.com/fsgit/fsgit/reconciler"
)

// classes fills reconciler.Class fields with valid classes.
var classes = jsondoctest.Generators{reflect.TypeFor[reconciler.Class](): jsondoctest.OneOf(reconciler.Classes...)}

// TestNode_roundTrip: the document the agent publishes, serves on its
// socket and fsgit status --fleet reads back is read back exactly, every
// field of it (a pending destroy's changes carry a class, which once could
// not be read back and broke status on exactly the node that needed it).
func TestNode_roundTrip(t *testing.T) {
	jsondoctest.RoundTrip[Node](t, jsondoctest.Options{Generators: classes,
		Marshal: func(v any) ([]byte, error) { return v.(*Node).Marshal() }})
}

// TestNode_pendingDestroyReadsBack is the document of issue 12: a node
// holding a destroy, as published, read back by ReadFleet's decoder.
func TestNode_pendingDestroyReadsBack(t *testing.T) {
	rep := &reconciler.Report{Node: "online-1", Revision: "abc", Started: time.Now(), Results: []reconciler.Result{
		{ID: "mariadb.grant:fs_user@%/x", Outcome: reconciler.PendingDestroy, Reason: "allowDestroy is false",
			Changes: []reconciler.Change{{Field: "privileges", Before: "SELECT", After: "(none)", Class: reconciler.Destructive}}},
	}}
	n := &Node{Node: "online-1"}
	n.Update(rep, rep.Results, "poll", time.Now())
	b, err := n.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatalf("a node with a pending destroy cannot be read back: %v\n%s", err, b)
	}
	if got := back.PendingDestroy[0].Changes[0].Class; got != reconciler.Destructive {
		t.Fatalf("class read back = %v", got)
	}
}

func TestNode_Accept(t *testing.T) {
	n := &Node{}
	n.Refuse("bad", "unsigned", time.Now())
	n.Accept("good")
	if n.DesiredRevision != "good" || len(n.Refused) != 0 {
		t.Fatalf("after accepting a newer commit: desired %q, refused %+v", n.DesiredRevision, n.Refused)
	}
	b, _ := n.Marshal()
	if back, err := Decode(b); err != nil || back.Refused != nil {
		t.Fatalf("refused read back = %+v, %v", back.Refused, err)
	}
}
