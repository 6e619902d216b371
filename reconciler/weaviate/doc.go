// Package weaviate implements the weaviate.class resource kind on Weaviate's
// REST API (/v1/schema), with plain net/http.
//
// A class is created when it is missing and properties are added when they
// are declared. Changes that Weaviate cannot make in place (a vectorizer, a
// property's data type or tokenization, immutable module or inverted index
// settings, a property that is no longer declared) are reported as
// destructive changes whose After value says why: the class would have to
// be deleted and created again, and it holds data, so that runs only where
// the resource allows destroy. Settings Weaviate can update (descriptions,
// bm25, stopwords, cleanup interval) are updated in place.
//
// Every plan first waits for /v1/.well-known/ready: a Weaviate container
// that was just (re)created is given time to start.
package weaviate
