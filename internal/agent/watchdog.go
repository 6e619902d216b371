package agent

import (
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// watchdog tells systemd (WATCHDOG=1, under WatchdogSec=) that the agent's
// loops are alive. It never pings on its own: the apply loop pings each
// time it goes round (and wakes up to do so when idle), a run pings when
// a resource finishes or a long step reports progress. A loop that is
// stuck stops the pings, and systemd restarts the agent.
type watchdog struct {
	// every is the wait between pings when idle (a third of systemd's
	// timeout); zero turns the watchdog off.
	every  time.Duration
	notify func(string)

	mu   sync.Mutex
	last time.Time
}

// newWatchdog reads systemd's watchdog timeout (WATCHDOG_USEC, for this
// process: WATCHDOG_PID) and takes it out of the environment, so that no
// process the agent starts sees it. Without it the watchdog is off.
func newWatchdog(notify func(string)) *watchdog {
	d, err := daemon.SdWatchdogEnabled(true)
	if err != nil || d <= 0 {
		return &watchdog{}
	}
	return &watchdog{every: d / 3, notify: notify}
}

// due fires when an idle loop should wake up to ping; nil when off.
func (w *watchdog) due() <-chan time.Time {
	if w == nil || w.every == 0 {
		return nil
	}
	return time.After(w.every)
}

// ping sends WATCHDOG=1, at most once a second (or once per interval when
// that is shorter).
func (w *watchdog) ping() {
	if w == nil || w.every == 0 {
		return
	}
	w.mu.Lock()
	now := time.Now()
	if now.Sub(w.last) < min(time.Second, w.every) {
		w.mu.Unlock()
		return
	}
	w.last = now
	w.mu.Unlock()
	w.notify(daemon.SdNotifyWatchdog)
}
