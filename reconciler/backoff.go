package reconciler

import (
	"time"

	"github.com/cenkalti/backoff/v5"
)

// RetryBackOff is the wait kinds use between attempts at something that
// may fail for a while (a download, a daemon's event stream). Equal jitter
// over the upper half of a doubling, capped delay keeps a fleet from
// retrying in step: the n-th wait (from 0) is drawn from [d/2, d], d =
// min(maxDelay, first·2^n). It is cenkalti/backoff's ExponentialBackOff
// centred on 3/4 of d; call Reset after a success.
func RetryBackOff(first, maxDelay time.Duration) *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     first * 3 / 4,
		RandomizationFactor: 1.0 / 3,
		Multiplier:          2,
		MaxInterval:         maxDelay * 3 / 4,
	}
}
