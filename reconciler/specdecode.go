package reconciler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// specDecoder decodes specs one after another with one json.Decoder, the
// only encoding/json API that refuses unknown fields. A new decoder per
// spec costs the Decoder, a reader, a read buffer of at least 512 bytes
// and its scanners' stacks: 962 of the 1567 bytes and 7 of the 18
// allocations of a file spec's decode (BenchmarkDecodeSpec), and every
// byte is a page fault in a no-op run, which never collects garbage.
// Reused, it reads the specs as one stream; decode checks where each
// value ended (InputOffset), so that each spec is exactly one value.
type specDecoder struct {
	dec *json.Decoder
	src specSource
}

// specSource is the reader under a specDecoder: the spec being decoded,
// and how many bytes it has handed the decoder in all, so that a stream
// offset can be turned into an offset in the spec.
type specSource struct {
	b   []byte
	fed int64
}

// Read hands out the rest of the spec.
func (s *specSource) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	s.fed += int64(n)
	return n, nil
}

func newSpecDecoder() *specDecoder {
	d := &specDecoder{}
	d.dec = json.NewDecoder(&d.src)
	d.dec.DisallowUnknownFields()
	return d
}

// maxPooledSpec is the largest spec after which a decoder goes back to
// its pool: the decoder keeps a read buffer as large as the largest spec
// it read, and a file's inline content may be 1 MiB.
const maxPooledSpec = 64 << 10

// errTrailingData is the error of a spec with more than one JSON value,
// or anything but white space after its value.
var errTrailingData = errors.New("data after the JSON value")

// decode decodes spec, which must hold one JSON value and nothing else but
// white space, into v, refusing fields v does not declare. reuse is true
// when d may decode the next spec: after any error it may not, since a
// syntax error sticks to the stream and a value that ends early leaves
// the rest of the spec in the decoder's buffer.
func (d *specDecoder) decode(spec []byte, v any) (reuse bool, err error) {
	start := d.src.fed // every byte before is white space left of the last spec
	d.src.b = spec
	err = d.dec.Decode(v)
	d.src.b = nil // the pool keeps no spec alive
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			se.Offset -= start // the stream's offset, not the spec's
		}
		return false, err
	}
	end := d.dec.InputOffset() - start
	if end < 0 || end > int64(len(spec)) {
		// Cannot happen: the value is in this spec.
		return false, fmt.Errorf("the JSON value ended at offset %d of a spec of %d bytes", end, len(spec))
	}
	for i, c := range spec[end:] {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false, fmt.Errorf("%w, at offset %d", errTrailingData, end+int64(i))
		}
	}
	return true, nil
}

// specDecoders is a pool of specDecoders: preparing a catalog decodes
// every resource's spec, from as many goroutines as it likes.
type specDecoders struct {
	pool sync.Pool
}

// decode decodes spec into v with a decoder of the pool.
func (p *specDecoders) decode(spec []byte, v any) error {
	d, _ := p.pool.Get().(*specDecoder)
	if d == nil {
		d = newSpecDecoder()
	}
	reuse, err := d.decode(spec, v)
	if reuse && len(spec) <= maxPooledSpec {
		p.pool.Put(d)
	}
	return err
}
