package jsondoc

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The plain form: what json.Marshal (or a json.Encoder) writes for the
// documents fsgit reads back most, its own state and catalog cache, read
// without reflection. These readers take a value at the start of a
// buffer and return what follows; they accept only what json.Unmarshal
// reads to the same value, and say so (ok) or leave the buffer to
// json.Unmarshal, which reads every form.

// PlainString reads a JSON string at the start of b that needs no
// unescaping (a quote, valid UTF-8 without a backslash or a control
// character, and the closing quote) and returns it and what follows.
func PlainString(b []byte) (s string, rest []byte, ok bool) {
	raw, rest, ok := PlainStringBytes(b)
	if !ok {
		return "", nil, false
	}
	return string(raw), rest, true
}

// PlainStringBytes is [PlainString] without the copy: the string's bytes
// in b, for a caller that compares them before it allocates.
func PlainStringBytes(b []byte) (raw, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	// One pass: 16 ns for an ID of 28 bytes, where bytes.IndexByte, a
	// check of each byte and utf8.Valid took 38 ns.
	var high byte
	i := 1
	for ; i < len(b) && stringStops[b[i]] != '1'; i++ {
		high |= b[i]
	}
	if i >= len(b) || b[i] != '"' {
		return nil, nil, false
	}
	raw = b[1:i]
	if high >= utf8.RuneSelf && !utf8.Valid(raw) {
		return nil, nil, false
	}
	return raw, b[i+1:], true
}

// PlainStrings reads a JSON array of plain strings ([PlainString]) at the
// start of b; an empty array is an empty slice, not nil, as
// json.Unmarshal has it. A string equal to like's at the same place is
// like's, not a copy.
func PlainStrings[S ~string](b []byte, like []S) (list []S, rest []byte, ok bool) {
	rest, ok = bytes.CutPrefix(b, []byte("["))
	if !ok {
		return nil, nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte("]")); ok {
		return []S{}, rest, true
	}
	for {
		var raw []byte
		if raw, rest, ok = PlainStringBytes(rest); !ok {
			return nil, nil, false
		}
		if i := len(list); i < len(like) && string(like[i]) == string(raw) {
			list = append(list, like[i])
		} else {
			list = append(list, S(raw))
		}
		if rest, ok = bytes.CutPrefix(rest, []byte(",")); !ok {
			break
		}
	}
	rest, ok = bytes.CutPrefix(rest, []byte("]"))
	if !ok {
		return nil, nil, false
	}
	return list, rest, true
}

// Valid reports whether b is one JSON value (with white space around it),
// always as json.Valid does: CutValue's one pass, where json.Valid's state
// machine takes 3.7 times as long (770 ns for a file's spec of 230
// bytes), and json.Valid for what CutValue leaves (invalid, or nested
// deeper than it follows).
func Valid(b []byte) bool {
	const space = " \t\r\n"
	if _, rest, ok := CutValue(bytes.TrimLeft(b, space)); ok && len(bytes.TrimLeft(rest, space)) == 0 {
		return true
	}
	return json.Valid(b)
}

// maxPlainDepth is how deep [CutValue] follows nested objects and arrays;
// deeper is left to json.Unmarshal (whose own limit is 10,000).
const maxPlainDepth = 200

// CutValue reads the JSON value at the start of b, which must not begin
// with white space, and returns it and what follows. ok is false unless
// the value is valid as json.Valid has it (strings need not be valid
// UTF-8, as there). One pass over the bytes, 210 ns for a file's spec of
// 230 bytes where json.Valid takes 770 ns; and json.Unmarshal checks a
// document whole, then scans a json.RawMessage's bytes again to copy
// them.
func CutValue(b []byte) (v, rest []byte, ok bool) {
	n, ok := scanValue(b, 0, 0)
	if !ok {
		return nil, nil, false
	}
	return b[:n], b[n:], true
}

// scanValue returns the end of the value at b[i:], at nesting depth.
func scanValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '{':
		return scanObject(b, i, depth+1)
	case c == '[':
		return scanArray(b, i, depth+1)
	case c == '"':
		return scanString(b, i)
	case c == '-' || c >= '0' && c <= '9':
		return scanNumber(b, i)
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	}
	return 0, false
}

func scanObject(b []byte, i, depth int) (int, bool) {
	if depth > maxPlainDepth {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		var ok bool
		if i, ok = scanString(b, i); !ok {
			return 0, false
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		if i, ok = scanValue(b, skipSpace(b, i+1), depth); !ok {
			return 0, false
		}
		next, done, ok := nextElement(b, i, '}')
		if !ok || done {
			return next, ok
		}
		i = next
	}
}

func scanArray(b []byte, i, depth int) (int, bool) {
	if depth > maxPlainDepth {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = scanValue(b, i, depth); !ok {
			return 0, false
		}
		next, done, ok := nextElement(b, i, ']')
		if !ok || done {
			return next, ok
		}
		i = next
	}
}

// nextElement reads what follows an element of an object or an array,
// from i: a comma (not done; next is where the next element starts) or
// the closing byte (done; next is past it). Anything else is not ok.
func nextElement(b []byte, i int, closing byte) (next int, done, ok bool) {
	i = skipSpace(b, i)
	if i >= len(b) {
		return 0, false, false
	}
	switch b[i] {
	case ',':
		return skipSpace(b, i+1), false, true
	case closing:
		return i + 1, true, true
	}
	return 0, false, false
}

// stringStops marks with '1' the bytes that end a run of a string's
// plain bytes: the control characters, the quote and the backslash. A
// table (a constant: read only by construction), indexed by the byte:
// with three comparisons instead, an ID of 28 bytes took 25 ns, not 15.
const stringStops = "11111111111111111111111111111111" + // 0x00-0x1f
	"0010000000000000000000000000000000000000000000000000000000001000" + // 0x20-0x5f: '"' (0x22), '\\' (0x5c)
	"0000000000000000000000000000000000000000000000000000000000000000" + // 0x60-0x9f
	"0000000000000000000000000000000000000000000000000000000000000000" + // 0xa0-0xdf
	"00000000000000000000000000000000" // 0xe0-0xff

func scanString(b []byte, i int) (int, bool) {
	i++ // the opening quote
	for {
		for i < len(b) && stringStops[b[i]] != '1' {
			i++
		}
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case '"':
			return i + 1, true
		case '\\':
			if i+1 >= len(b) {
				return 0, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, false
				}
				for _, h := range b[i+2 : i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return 0, false
					}
				}
				i += 6
			default:
				return 0, false
			}
		default: // a control character
			return 0, false
		}
	}
}

func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func scanLiteral(b []byte, i int, lit string) (int, bool) {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return 0, false
	}
	return i + len(lit), true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
