package mariadb

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestObservation_NeverStaleAfterMark: goroutines apply changes to
// accounts (a version each, bumped, then the account marked, as an apply
// does), plan them, and drop every read, all at once; a plan that follows
// an apply of its account, in the same goroutine, always sees that version
// or a later one, whether it gets the whole read, an account's read or one
// in progress, and so does a read of every account. Run it with -race.
func TestObservation_NeverStaleAfterMark(t *testing.T) {
	const accounts, workers, rounds = 5, 8, 1000
	var versions [accounts]atomic.Int64
	snapshot := func(acct *accountKey) map[accountKey]int64 {
		m := map[accountKey]int64{}
		for i := range versions {
			a := accountKey{fmt.Sprint("u", i), "h"}
			if acct == nil || *acct == a {
				m[a] = versions[i].Load()
			}
		}
		return m
	}
	var wholeReads, narrowReads atomic.Int64
	read := func(_ context.Context, acct *accountKey) (map[accountKey]int64, error) {
		if acct == nil {
			wholeReads.Add(1)
		} else {
			narrowReads.Add(1)
		}
		return snapshot(acct), nil
	}
	o := newObservation()
	get := func(acct *accountKey) map[accountKey]int64 {
		v, err := o.get(t.Context(), pieceAccounts, pieceAccounts, acct,
			func(ctx context.Context) (any, error) { return read(ctx, nil) },
			func(ctx context.Context) (any, error) { return read(ctx, acct) })
		if err != nil {
			t.Error(err)
			return nil
		}
		return v.(map[accountKey]int64)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				i := (w + r) % accounts
				a := accountKey{fmt.Sprint("u", i), "h"}
				switch r % 7 {
				case 6:
					o.reset()
				default:
					applied := versions[i].Add(1)
					o.mark(a)
					var got int64
					if r%7 == 0 {
						got = get(nil)[a] // every account, as a security resource reads them
					} else {
						got = get(&a)[a]
					}
					if got < applied {
						t.Errorf("%s: planned from version %d after applying %d", a, got, applied)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d whole reads, %d of one account", wholeReads.Load(), narrowReads.Load())
	if narrowReads.Load() == 0 {
		t.Error("no account was read alone")
	}
}
