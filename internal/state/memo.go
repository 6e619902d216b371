package state

import (
	"bytes"
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/fsgit/fsgit/reconciler"
)

// memo is what the store knows the inventory and observed buckets of its
// open file hold: each entry's value and its exact bytes in the file. A
// record whose memory holds the same values (a quiet run: the same
// resources, observed the same) then encodes nothing and reads nothing
// back to find that out: the bytes it would compare are the memo's.
//
// A memo describes one *bolt.DB (a recovery opens another: the memo no
// longer applies) and is made by Memory, which read the buckets, or by
// Record, which wrote them. Both hold Store.recordMu across the
// transaction and the memo's update, so that a memo never describes an
// older file than the one on disk. Only Record and the creation of a file
// write these two buckets. A record made while the file changed outside
// the store (Store.changedOutside) does not use the memo: it compares
// every entry with the file, as without one, and so corrects a hand edit;
// Recheck, which takes such a file as the store's own once it checked it,
// drops the memo.
type memo struct {
	db  *bolt.DB
	inv map[reconciler.ID]memoEntry[reconciler.Resource]
	obs map[reconciler.ID]memoEntry[reconciler.ObservedState]
}

// memoEntry is one entry of a bucket: its value and its bytes in the file.
type memoEntry[V any] struct {
	val V
	enc []byte
}

// sameResource reports whether a and b encode to the same JSON (it may
// say false for two that do, never true for two that do not).
// TestSameResourceFields holds it to Resource's fields.
func sameResource(a, b reconciler.Resource) bool {
	return a.ID == b.ID && a.Mode == b.Mode && a.AllowDestroy == b.AllowDestroy &&
		slices.Equal(a.Require, b.Require) && slices.Equal(a.Notify, b.Notify) &&
		(a.Spec == nil) == (b.Spec == nil) && bytes.Equal(a.Spec, b.Spec)
}

// sameObserved reports whether a and b encode to the same JSON (as
// sameResource). TestSameObservedFields holds it to ObservedState's
// fields.
func sameObserved(a, b reconciler.ObservedState) bool {
	return a.Hash == b.Hash && maps.Equal(a.Fields, b.Fields)
}

// memoFor returns the memo if it describes db, else nil.
func (s *Store) memoFor(db *bolt.DB) *memo {
	s.memoMu.Lock()
	defer s.memoMu.Unlock()
	if s.memo == nil || s.memo.db != db {
		return nil
	}
	return s.memo
}

// setMemo replaces the memo.
func (s *Store) setMemo(m *memo) {
	s.memoMu.Lock()
	s.memo = m
	s.memoMu.Unlock()
}
