package desired

import (
	"fmt"
	"strings"
	"testing"
)

// TestProblemString_ManyNodes checks that a problem shared by a fleet's
// nodes names a few of them and how many, on a line of reasonable length,
// while Node keeps every name.
func TestProblemString_ManyNodes(t *testing.T) {
	var names []string
	for i := range 333 {
		names = append(names, fmt.Sprintf("gen-%04d", i))
	}
	p := Problem{Pos: "f.cue:1:2", Node: strings.Join(names, ", "), Resource: "artifact:/x.jar", Msg: "sha256 is the all-zero placeholder", Warning: true}
	got := p.String()
	want := "f.cue:1:2: warning: nodes gen-0000, gen-0001, gen-0002, gen-0003, gen-0004 and 328 more (333 in all): resource artifact:/x.jar: sha256 is the all-zero placeholder"
	if got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	if strings.Count(p.Node, ", ") != 332 {
		t.Error("Node lost names")
	}
	p.Node = "a, b"
	if got := p.String(); got != "f.cue:1:2: warning: nodes a, b: resource artifact:/x.jar: sha256 is the all-zero placeholder" {
		t.Errorf("two nodes: %s", got)
	}
}
