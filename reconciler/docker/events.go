package docker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/fsgit/fsgit/reconciler"
)

// Watched container events: every stop, kill and crash ends in "die";
// "destroy" is a removal; "pause", "oom" and "rename" change what Plan
// would find.
var watchedActions = []string{"die", "destroy", "pause", "oom", "rename"}

// Watch follows the Engine event stream of every daemon that holds a
// planned container (the default daemon when nothing was planned yet) and
// calls onChange with the resource ID of a managed container
// (label fsgit.managed=true) that died, was removed, paused or renamed.
// Only containers this kind value has planned are reported (another fsgit,
// or a test, may manage containers on the same daemon), once their events
// have settled for a moment. Events that fsgit's own applies cause are not
// reported.
//
// Notifications are rate-limited per resource with a token bucket
// (EventBurst at once, then one per EventEvery): a crash loop gets one
// correction per period, and one deferred notification is delivered when
// the bucket refills, so the last event is never lost. After the stream
// breaks (daemon restart) Watch reconnects with capped backoff and reports
// every known resource once, since events were missed meanwhile.
//
// onChange is called from Watch's goroutines, never concurrently for the
// same ID; it should hand the ID off and return quickly. Watch blocks until
// ctx is done and then returns nil. Only one Watch may run at a time per
// kind value.
func (k *Container) Watch(ctx context.Context, log *slog.Logger, onChange func(reconciler.ID)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	burst, every := k.EventBurst, k.EventEvery
	if burst <= 0 {
		burst = 3
	}
	if every <= 0 {
		every = 10 * time.Second
	}
	w := &watchState{
		k: k, ctx: ctx, log: log,
		lim:    newLimiter(burst, every, onChange),
		active: map[string]bool{},
		timers: map[reconciler.ID]*time.Timer{},
	}
	k.mu.Lock()
	hosts := make([]string, 0, len(k.hosts))
	for h := range k.hosts {
		hosts = append(hosts, h)
	}
	k.watch = w
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.watch = nil
		k.mu.Unlock()
	}()
	if len(hosts) == 0 {
		hosts = []string{DefaultHost}
	}
	for _, h := range hosts {
		w.addHost(h)
	}
	<-ctx.Done()
	w.wg.Wait()
	w.mu.Lock()
	for _, t := range w.timers {
		t.Stop()
	}
	w.mu.Unlock()
	w.lim.stop()
	return nil
}

// watchState is one running Watch.
type watchState struct {
	k   *Container
	ctx context.Context
	log *slog.Logger
	lim *limiter

	mu     sync.Mutex
	active map[string]bool
	timers map[reconciler.ID]*time.Timer
	wg     sync.WaitGroup
}

// addHost starts following host's events unless it is already followed.
// Called with k.mu held or from Watch.
func (w *watchState) addHost(host string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.active[host] || w.ctx.Err() != nil {
		return
	}
	w.active[host] = true
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.follow(host)
	}()
}

// follow reads host's event stream until ctx is done, reconnecting with
// capped, jittered backoff.
func (w *watchState) follow(host string) {
	log := w.log.With("docker", host)
	// Equal jitter between 0.5 s and 30 s.
	bo := reconciler.RetryBackOff(time.Second, 30*time.Second)
	failing := false
	first := true
	for w.ctx.Err() == nil {
		cl, err := w.k.clients.get(host)
		if err == nil {
			err = w.stream(cl.Events, func() {
				if failing {
					log.Info("docker events: reconnected")
				}
				if !first || failing {
					w.resync(host)
				}
				first, failing = false, false
				bo.Reset()
			})
		}
		if w.ctx.Err() != nil {
			return
		}
		if !failing {
			log.Warn("docker events: stream broke, reconnecting", "err", daemonErr(host, err))
			failing = true
		}
		select {
		case <-w.ctx.Done():
			return
		case <-time.After(bo.NextBackOff()):
		}
	}
}

type eventsFunc func(ctx context.Context, opts events.ListOptions) (<-chan events.Message, <-chan error)

// stream reads one connection's events; connected is called once the
// daemon has answered (the first event or a short quiet period).
func (w *watchState) stream(subscribe eventsFunc, connected func()) error {
	args := filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("label", LabelManaged+"=true"),
	)
	for _, a := range watchedActions {
		args.Add("event", a)
	}
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	msgs, errs := subscribe(ctx, events.ListOptions{Filters: args})
	// The client returns before the daemon answers; a broken socket shows
	// as an error at once, so a short quiet period means connected.
	quiet := time.NewTimer(200 * time.Millisecond)
	defer quiet.Stop()
	isConnected := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			return err
		case <-quiet.C:
			if !isConnected {
				isConnected = true
				connected()
			}
		case m := <-msgs:
			if !isConnected {
				isConnected = true
				connected()
			}
			w.handle(m)
		}
	}
}

func (w *watchState) handle(m events.Message) {
	id := reconciler.ID(m.Actor.Attributes[LabelID])
	if !id.Valid() || !w.k.known(id) || w.k.isEcho(id, time.Unix(0, m.TimeNano)) {
		return
	}
	// A container renamed aside by a recreate is not the resource.
	if name := m.Actor.Attributes["name"]; name != "" && name != id.Name() && m.Action != "rename" {
		return
	}
	w.log.Debug("docker events: managed container changed", "id", id, "action", string(m.Action))
	w.settle(id)
}

// eventSettle is how long Watch waits after a container's last event
// before reporting it: `docker rm -f` is a kill (die) and then a removal
// (destroy), and reacting to the die alone would restart a container that
// is being removed.
const eventSettle = 150 * time.Millisecond

// settle reports id once no event about it came for eventSettle.
func (w *watchState) settle(id reconciler.ID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() != nil {
		return
	}
	if t, ok := w.timers[id]; ok {
		t.Reset(eventSettle)
		return
	}
	w.timers[id] = time.AfterFunc(eventSettle, func() {
		w.mu.Lock()
		delete(w.timers, id)
		w.mu.Unlock()
		if w.ctx.Err() == nil {
			w.lim.notify(id)
		}
	})
}

// resync reports every known container of host after missed events.
func (w *watchState) resync(host string) {
	w.k.mu.Lock()
	ids := make([]reconciler.ID, 0, len(w.k.ids))
	for id := range w.k.ids {
		ids = append(ids, id)
	}
	w.k.mu.Unlock()
	for _, id := range ids {
		w.lim.notify(id)
	}
}

// limiter is a token bucket per resource ID with one deferred delivery.
type limiter struct {
	burst    int
	every    time.Duration
	onChange func(reconciler.ID)

	mu      sync.Mutex
	buckets map[reconciler.ID]*bucket
	stopped bool
}

type bucket struct {
	tokens  float64
	last    time.Time
	pending *time.Timer
	deliver sync.Mutex // serializes onChange per ID
}

func newLimiter(burst int, every time.Duration, onChange func(reconciler.ID)) *limiter {
	return &limiter{burst: burst, every: every, onChange: onChange, buckets: map[reconciler.ID]*bucket{}}
}

// notify delivers id now if its bucket has a token, or once when it will.
func (l *limiter) notify(id reconciler.ID) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	b := l.buckets[id]
	now := time.Now()
	if b == nil {
		b = &bucket{tokens: float64(l.burst), last: now}
		l.buckets[id] = b
	}
	b.tokens = min(float64(l.burst), b.tokens+now.Sub(b.last).Seconds()/l.every.Seconds())
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		l.mu.Unlock()
		l.deliver(b, id)
		return
	}
	if b.pending == nil {
		wait := time.Duration((1 - b.tokens) * float64(l.every))
		b.pending = time.AfterFunc(wait, func() {
			l.mu.Lock()
			b.pending = nil
			stopped := l.stopped
			l.mu.Unlock()
			if !stopped {
				l.notify(id)
			}
		})
	}
	l.mu.Unlock()
}

func (l *limiter) deliver(b *bucket, id reconciler.ID) {
	b.deliver.Lock()
	defer b.deliver.Unlock()
	l.onChange(id)
}

func (l *limiter) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	for _, b := range l.buckets {
		if b.pending != nil {
			b.pending.Stop()
		}
	}
}
