package reconciler

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Window is a maintenance window: when disruptive changes (restarts,
// recreates) may run on the node. Safe changes run at any time.
type Window struct {
	// Days are the days it opens on ("mon" ... "sun"); empty: every day.
	Days []string `json:"days,omitempty"`
	// Start and End are times of day, "15:04" or "15:04:05"; an End
	// before Start ends the next day.
	Start string `json:"start"`
	End   string `json:"end"`
	// Timezone is an IANA time zone name; empty: UTC.
	Timezone string `json:"timezone,omitempty"`
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

func parseClock(s string) (time.Duration, error) {
	for _, layout := range []string{"15:04:05", "15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second, nil
		}
	}
	return 0, fmt.Errorf("time of day %q: want HH:MM or HH:MM:SS", s)
}

// Check says what is wrong with the window.
func (w Window) Check() error {
	if _, err := parseClock(w.Start); err != nil {
		return fmt.Errorf("window start: %w", err)
	}
	if _, err := parseClock(w.End); err != nil {
		return fmt.Errorf("window end: %w", err)
	}
	if _, err := time.LoadLocation(w.Timezone); err != nil {
		return fmt.Errorf("window timezone %q: %w", w.Timezone, err)
	}
	for _, d := range w.Days {
		if !slices.Contains(dayNames, d) {
			return fmt.Errorf("window day %q: want one of %s", d, strings.Join(dayNames, ", "))
		}
	}
	return nil
}

// openings returns the window's opening and closing instants that start
// on the day of day (in the window's zone).
func (w Window) opening(day time.Time) (open, end time.Time, ok bool) {
	loc, err := time.LoadLocation(w.Timezone)
	if err != nil {
		return
	}
	start, err1 := parseClock(w.Start)
	stop, err2 := parseClock(w.End)
	if err1 != nil || err2 != nil {
		return
	}
	d := day.In(loc)
	if len(w.Days) > 0 && !slices.Contains(w.Days, dayNames[d.Weekday()]) {
		return
	}
	midnight := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc)
	open = midnight.Add(start)
	end = midnight.Add(stop)
	if stop <= start {
		end = end.Add(24 * time.Hour)
	}
	return open, end, true
}

// Open reports whether t is in one of the windows, and when the next one
// opens otherwise (zero when none ever does). No window: always open.
func Open(windows []Window, t time.Time) (bool, time.Time) {
	if len(windows) == 0 {
		return true, time.Time{}
	}
	var next time.Time
	for _, w := range windows {
		for i := -1; i <= 8; i++ {
			open, end, ok := w.opening(t.AddDate(0, 0, i))
			if !ok {
				continue
			}
			if !t.Before(open) && t.Before(end) {
				return true, time.Time{}
			}
			if open.After(t) && (next.IsZero() || open.Before(next)) {
				next = open
			}
		}
	}
	return false, next
}
