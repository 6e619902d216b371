package reconciler

import "sync"

// steppers runs the steps of one run's resources (see [contain]) on
// goroutines it keeps between steps: one per step in hand at a time, whose
// stacks have grown to what a step needs by the next one, instead of a new
// goroutine per step and resource. A goroutine whose step outlives its
// time limit is abandoned by contain, not by steppers: it comes back when
// its step ends, or leaves if the run is over by then.
type steppers struct {
	mu     sync.Mutex
	idle   []*stepper
	closed bool
	// started counts the goroutines started.
	started int
}

// stepper is one kept goroutine; it runs the functions sent on work.
type stepper struct{ work chan func() }

// run runs f on an idle goroutine, or a new one.
func (p *steppers) run(f func()) {
	p.mu.Lock()
	var s *stepper
	if n := len(p.idle); n > 0 && !p.closed {
		s, p.idle = p.idle[n-1], p.idle[:n-1]
	} else {
		p.started++
	}
	p.mu.Unlock()
	if s == nil {
		s = &stepper{work: make(chan func(), 1)}
		go s.loop(p)
	}
	s.work <- f
}

// loop runs what s is sent, going back to p's idle goroutines after each,
// until p is closed.
func (s *stepper) loop(p *steppers) {
	for f := range s.work {
		f()
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, s)
		p.mu.Unlock()
	}
}

// close ends the idle goroutines, and the busy ones when their steps end.
func (p *steppers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, s := range p.idle {
		close(s.work)
	}
	p.idle = nil
}
