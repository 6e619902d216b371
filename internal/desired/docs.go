package desired

import (
	"strings"
	"sync"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// docSpan is a documented field of the schema or a profile: the lines it
// spans and its doc comment's first paragraph.
type docSpan struct {
	start, end int
	label      string
	doc        string
}

// docIndex finds the doc comment of the schema field that a position of
// an error falls in, so that vet can say in words what a constraint
// expects instead of printing its regular expression. The comments are
// read from the .cue files themselves: Go declares no constraint.
type docIndex struct {
	once  sync.Once
	src   map[string][]byte // file name -> content, schema and profiles
	spans map[string][]docSpan
	// kindNames are the kinds of #Kinds in schema/kinds.cue, in order.
	kindNames []string
}

// kinds returns the resource kinds the schema defines, in its order.
func (d *docIndex) kinds() []string {
	d.once.Do(d.build)
	return d.kindNames
}

func (d *docIndex) build() {
	d.spans = map[string][]docSpan{}
	for name, src := range d.src {
		f, err := parser.ParseFile(name, src, parser.ParseComments)
		if err != nil {
			continue
		}
		ast.Walk(f, func(n ast.Node) bool {
			field, ok := n.(*ast.Field)
			if !ok {
				return true
			}
			if label, _, _ := ast.LabelName(field.Label); label == "#Kinds" && name == "schema/kinds.cue" {
				d.kindNames = append(d.kindNames, kindLabels(field)...)
			}
			label, _, _ := ast.LabelName(field.Label)
			doc := docText(field, label)
			if doc == "" {
				return true
			}
			d.spans[name] = append(d.spans[name], docSpan{
				start: field.Pos().Line(),
				end:   field.End().Line(),
				label: label,
				doc:   doc,
			})
			return true
		}, nil)
	}
}

// kindLabels returns the kind names a #Kinds field of schema/kinds.cue
// declares ("#Kinds: file: {...}"); not the pattern that every entry
// satisfies ("#Kinds: [string]: {...}").
func kindLabels(field *ast.Field) []string {
	st, ok := field.Value.(*ast.StructLit)
	if !ok {
		return nil
	}
	var out []string
	for _, e := range st.Elts {
		f, ok := e.(*ast.Field)
		if !ok {
			continue
		}
		if k, _, err := ast.LabelName(f.Label); err == nil && k != "" {
			out = append(out, k)
		}
	}
	return out
}

// docText returns the first paragraph of the doc comment of a field
// labelled label on one line, without a leading "<label> is ".
func docText(field *ast.Field, label string) string {
	for _, cg := range ast.Comments(field) {
		if !cg.Doc {
			continue
		}
		var words []string
		for _, c := range cg.List {
			line := strings.TrimSpace(strings.TrimPrefix(c.Text, "//"))
			if line == "" {
				break
			}
			words = append(words, line)
		}
		text := strings.Join(words, " ")
		text = strings.TrimPrefix(text, label+" is ")
		return strings.TrimSuffix(text, ".")
	}
	return ""
}

// lookup returns the innermost documented field around any of the
// positions; of several, the one that spans the fewest lines (a type
// definition such as #Port, rather than the profile that uses it).
func (d *docIndex) lookup(positions []token.Pos) (docSpan, bool) {
	d.once.Do(d.build)
	var best docSpan
	found := false
	for _, p := range positions {
		for _, sp := range d.spans[p.Filename()] {
			if p.Line() < sp.start || p.Line() > sp.end {
				continue
			}
			if !found || sp.end-sp.start < best.end-best.start {
				best, found = sp, true
			}
		}
	}
	return best, found
}
