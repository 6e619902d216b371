package main

import (
	"hash/fnv"
	"math"
	"strings"
	"unicode"
)

// Embedder turns text into a unit vector by feature hashing: every
// lower-cased word and every character trigram of a word (padded with
// spaces) adds ±weight to one coordinate chosen by an FNV hash. Equal text
// gives equal vectors on every run and machine; texts that share words or
// word pieces get a high cosine similarity.
type Embedder struct {
	// Dims is the vector's length.
	Dims int
}

// Embed returns the vector of text. Text without any letter or digit gives
// a fixed non-zero vector, so that the result is always a unit vector.
func (e Embedder) Embed(text string) []float32 {
	v := make([]float64, e.Dims)
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	for _, w := range words {
		e.add(v, "w:"+w, 1.0)
		padded := []rune(" " + w + " ")
		for i := 0; i+3 <= len(padded); i++ {
			e.add(v, "t:"+string(padded[i:i+3]), 0.5)
		}
	}
	if len(words) == 0 {
		e.add(v, "empty", 1.0)
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	norm = math.Sqrt(norm)
	out := make([]float32, e.Dims)
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}

// add hashes feature to a coordinate and a sign and adds weight there.
func (e Embedder) add(v []float64, feature string, weight float64) {
	h := fnv.New64a()
	_, _ = h.Write([]byte(feature))
	sum := h.Sum64()
	idx := int(sum % uint64(e.Dims))
	if sum>>63 == 1 {
		weight = -weight
	}
	v[idx] += weight
}
