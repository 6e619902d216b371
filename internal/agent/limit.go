package agent

import (
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// corrections limits how often one resource's drift is corrected on a
// file event: past max corrections within window, it is left alone (and
// reported) until the window has room again. A resource that another
// writer keeps changing is then corrected at most max times per window,
// plus once per poll, instead of spinning.
type corrections struct {
	max    int
	window time.Duration
	times  map[reconciler.ID][]time.Time
}

func newCorrections(max int, window time.Duration) *corrections {
	return &corrections{max: max, window: window, times: map[reconciler.ID][]time.Time{}}
}

// allow reports whether id may be corrected now.
func (c *corrections) allow(id reconciler.ID, now time.Time) bool {
	c.trim(id, now)
	return len(c.times[id]) < c.max
}

// record notes a correction of id at now.
func (c *corrections) record(id reconciler.ID, now time.Time) {
	c.trim(id, now)
	c.times[id] = append(c.times[id], now)
}

func (c *corrections) trim(id reconciler.ID, now time.Time) {
	ts := c.times[id]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= c.window {
		i++
	}
	if i == len(ts) {
		delete(c.times, id)
		return
	}
	c.times[id] = ts[i:]
}
