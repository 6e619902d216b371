package iceberg

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// ptype is an Iceberg primitive type as declared in a spec, read without
// iceberg-go (which fsgit links only into fsgit-iceberg). Its String is
// iceberg-go's own rendering of the type, so that a declared type compares
// equal to the type of an observed column.
type ptype struct {
	base        string // "long", "decimal", "fixed", ...
	prec, scale int    // decimal
	length      int    // fixed
	str         string // iceberg-go's String()
}

func (t ptype) String() string { return t.str }

var (
	fixedRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^fixed\[(\d+)\]$`) })
	decimalRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$`) })
	geometryRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)^geometry\s*(?:\(\s*([^),]+?)\s*\))?$`) })
	geographyRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)^geography\s*(?:\(\s*([^\s,)]+)\s*(?:,\s*(\w+)\s*)?\))?$`)
	})
)

// parseType reads an Iceberg primitive type name ("long", "decimal(10,2)",
// "fixed[16]", ...) with the rules of iceberg-go's parser.
func parseType(s string) (ptype, error) {
	switch s {
	case "boolean", "int", "long", "float", "double", "date", "time", "timestamp", "timestamp_ns",
		"timestamptz_ns", "timestamptz", "string", "uuid", "binary", "unknown":
		return ptype{base: s, str: s}, nil
	case "variant":
		return ptype{}, fmt.Errorf("type %q is not a primitive type", s)
	}
	switch {
	case strings.HasPrefix(s, "fixed"):
		m := fixedRE().FindStringSubmatch(s)
		if m == nil {
			return ptype{}, fmt.Errorf("type %q: invalid type string", s)
		}
		n, err := strconv.Atoi(m[1])
		if err != nil {
			return ptype{}, fmt.Errorf("type %q: invalid fixed length %q", s, m[1])
		}
		return ptype{base: "fixed", length: n, str: fmt.Sprintf("fixed[%d]", n)}, nil
	case strings.HasPrefix(s, "decimal"):
		m := decimalRE().FindStringSubmatch(s)
		if m == nil {
			return ptype{}, fmt.Errorf("type %q: invalid type string", s)
		}
		p, err1 := strconv.Atoi(m[1])
		sc, err2 := strconv.Atoi(m[2])
		if err1 != nil || err2 != nil {
			return ptype{}, fmt.Errorf("type %q: invalid type string", s)
		}
		switch {
		case p <= 0 || p > 38:
			return ptype{}, fmt.Errorf("type %q: invalid precision %d: must be in 1..38", s, p)
		case sc < 0 || sc > p:
			return ptype{}, fmt.Errorf("type %q: invalid scale %d: must be in 0..%d", s, sc, p)
		}
		return ptype{base: "decimal", prec: p, scale: sc, str: fmt.Sprintf("decimal(%d, %d)", p, sc)}, nil
	case geometryRE().MatchString(s):
		return ptype{base: "geometry", str: s}, nil
	case geographyRE().MatchString(s):
		return ptype{base: "geography", str: s}, nil
	}
	return ptype{}, fmt.Errorf("type %q: unrecognized field type", s)
}

// CanonicalType returns iceberg-go's rendering of a declared primitive type
// ("decimal(10,2)" is "decimal(10, 2)"), or an error for a type Iceberg
// does not know.
func CanonicalType(s string) (string, error) {
	t, err := parseType(s)
	if err != nil {
		return "", err
	}
	return t.str, nil
}

// promotable reports whether Iceberg's schema evolution can widen from to
// to: int to long, float to double, decimal(P,S) to decimal(P',S) with
// P' >= P. These are the promotions of the table spec (and Java's
// TypeUtil); iceberg-go's reader also accepts string/binary swaps, which
// Spark would refuse, so they are refused here too.
func promotable(from, to ptype) bool {
	switch from.base {
	case "int":
		return to.base == "long"
	case "float":
		return to.base == "double"
	case "decimal":
		return to.base == "decimal" && to.scale == from.scale && to.prec >= from.prec
	}
	return false
}

// transform is a partition transform as iceberg-go parses it: an unknown
// name is kept (and accepted) as is.
type transform struct {
	name  string // identity, void, year, month, day, hour, bucket, truncate, or the unknown text
	width int
	known bool
}

func (t transform) String() string {
	switch t.name {
	case "bucket", "truncate":
		return fmt.Sprintf("%s[%d]", t.name, t.width)
	}
	return t.name
}

// parseTransform reads a transform with iceberg-go's ParseTransform rules:
// simple names and bucket[N]/truncate[W], case-insensitively; anything else
// is an unknown transform, kept verbatim.
func parseTransform(s string) (transform, error) {
	if s == "" {
		return transform{}, fmt.Errorf("invalid transform: empty transform")
	}
	for _, cand := range []string{s, strings.ToLower(s)} {
		switch cand {
		case "identity", "void", "year", "month", "day", "hour":
			return transform{name: cand, known: true}, nil
		}
		for _, p := range []string{"bucket", "truncate"} {
			rest, ok := strings.CutPrefix(cand, p+"[")
			if !ok || len(rest) < 2 || !strings.HasSuffix(rest, "]") {
				continue
			}
			w := strings.TrimSuffix(rest, "]")
			if strings.Trim(w, "0123456789") != "" {
				continue
			}
			n, err := strconv.Atoi(w)
			if err != nil || n <= 0 || n > math.MaxInt32 {
				return transform{}, fmt.Errorf("invalid transform: %s", s)
			}
			return transform{name: p, width: n, known: true}, nil
		}
	}
	return transform{name: s}, nil
}

// canTransform is iceberg-go's Transform.CanTransform.
func (t transform) canTransform(typ ptype) bool {
	b := typ.base
	switch t.name {
	case "identity":
		return b != "geometry" && b != "geography"
	case "void":
		return true
	case "bucket":
		switch b {
		case "int", "date", "long", "time", "timestamp_ns", "timestamp", "timestamptz_ns", "timestamptz",
			"decimal", "string", "fixed", "binary", "uuid":
			return true
		}
		return false
	case "truncate":
		switch b {
		case "int", "long", "string", "binary", "decimal":
			return true
		}
		return false
	case "year", "month", "day":
		switch b {
		case "date", "timestamp", "timestamptz", "timestamp_ns", "timestamptz_ns":
			return true
		}
		return false
	case "hour":
		switch b {
		case "timestamp", "timestamptz", "timestamp_ns", "timestamptz_ns":
			return true
		}
		return false
	}
	return true // unknown transforms are not checked, as in iceberg-go
}

// validateSchema checks the declared schema and partition spec.
func validateSchema(s *SchemaSpec, parts []PartitionFieldSpec) error {
	if len(s.Fields) == 0 {
		return fmt.Errorf("schema has no fields")
	}
	ids, names := map[int]bool{}, map[string]bool{}
	byID := map[int]ptype{}
	for _, f := range s.Fields {
		if f.ID < 1 {
			return fmt.Errorf("field %q: id %d must be >= 1", f.Name, f.ID)
		}
		if f.Name == "" || strings.Contains(f.Name, ".") {
			return fmt.Errorf("field %d: name %q must be non-empty and without a dot", f.ID, f.Name)
		}
		if ids[f.ID] {
			return fmt.Errorf("field id %d is declared twice", f.ID)
		}
		if names[f.Name] {
			return fmt.Errorf("field name %q is declared twice", f.Name)
		}
		ids[f.ID], names[f.Name] = true, true
		t, err := parseType(f.Type)
		if err != nil {
			return fmt.Errorf("field %d %q: %w", f.ID, f.Name, err)
		}
		byID[f.ID] = t
	}
	pnames := map[string]bool{}
	for _, p := range parts {
		t, ok := byID[p.SourceID]
		if !ok {
			return fmt.Errorf("partition field %q: source id %d is not a field of the schema", p.Name, p.SourceID)
		}
		tr, err := parseTransform(p.Transform)
		if err != nil {
			return fmt.Errorf("partition field %q: %w", p.Name, err)
		}
		if !tr.canTransform(t) {
			return fmt.Errorf("partition field %q: transform %s does not apply to type %s", p.Name, tr, t)
		}
		if p.Name == "" || pnames[p.Name] {
			return fmt.Errorf("partition field name %q is empty or declared twice", p.Name)
		}
		pnames[p.Name] = true
	}
	return nil
}

// DescribeField renders a declared or observed column for a plan:
// "batch int optional".
func DescribeField(name, typ string, required bool) string {
	req := "optional"
	if required {
		req = "required"
	}
	return fmt.Sprintf("%s %s %s", name, typ, req)
}

// SpecString is a stable summary of a partition spec: "day(4) ts_day, ...",
// by source ID.
func SpecString(fields []PartitionFieldSpec) string {
	if len(fields) == 0 {
		return "unpartitioned"
	}
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = fmt.Sprintf("%s(%d) %s", f.Transform, f.SourceID, f.Name)
	}
	return strings.Join(parts, ", ")
}

// NormalizeSpec parses and re-prints each transform so that "Day" and
// "day" compare equal, and leaves out void fields.
func NormalizeSpec(in []PartitionFieldSpec) []PartitionFieldSpec {
	out := make([]PartitionFieldSpec, 0, len(in))
	for _, f := range in {
		if tr, err := parseTransform(f.Transform); err == nil {
			f.Transform = tr.String()
		}
		if f.Transform == "void" {
			continue
		}
		out = append(out, f)
	}
	return out
}
