package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/fsgit/fsgit/reconciler"
)

// writeReport prints a run's report in the output format; an error
// writing it means the command could not run.
func writeReport(w io.Writer, output string, verbose bool, rep *reconciler.Report) error {
	var err error
	if structured(output) {
		err = writeDoc(w, output, rep)
	} else {
		err = rep.WriteText(w, reconciler.TextOptions{Verbose: verbose, Times: true})
	}
	if err != nil {
		return couldNotRun(fmt.Errorf("write report: %w", err))
	}
	return nil
}

// runExit is the exit of a command that ran rep: its exit code.
func runExit(rep *reconciler.Report) error {
	if code := rep.ExitCode(); code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// progress shows the progress of long steps (downloads, package installs,
// image pulls, migrations) on a terminal, one line rewritten in place;
// elsewhere it shows nothing, so that pipes stay clean (the log has the
// steps every few seconds).
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	last  time.Time
	shown bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// update is a reconciler.RunOptions Progress function.
func (p *progress) update(u reconciler.ProgressUpdate) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	finished := u.Finished
	if !finished && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r\033[K%s", progressLine(u))
	p.shown = !finished
	if finished {
		fmt.Fprintln(p.w)
	}
}

// done clears a progress line left unfinished.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

// progressLine is one update as a terminal shows it: "pkg:mariadb-server:
// apt-get install: 42% Unpacking mariadb-server".
func progressLine(u reconciler.ProgressUpdate) string {
	line := fmt.Sprintf("%s: %s", u.ID, u.Step)
	switch {
	case u.Unit == reconciler.UnitBytes:
		line += ": " + byteSize(u.Done)
		if u.Total > 0 {
			line += fmt.Sprintf(" / %s (%d%%)", byteSize(u.Total), u.Done*100/u.Total)
		}
	case u.Unit == reconciler.UnitPercent:
		line += fmt.Sprintf(": %d%%", u.Done)
	case u.Total > 0:
		line += fmt.Sprintf(": %d/%d", u.Done, u.Total)
	}
	if u.Message != "" {
		line += " " + u.Message
	}
	if u.Finished {
		line += fmt.Sprintf(" (%.1fs)", u.Elapsed.Seconds())
	}
	return line
}

func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
