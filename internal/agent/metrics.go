package agent

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fsgit/fsgit/reconciler"
)

// metrics are the agent's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg *prometheus.Registry

	runs             *prometheus.CounterVec
	runDuration      *prometheus.HistogramVec
	changes          *prometheus.CounterVec
	driftCorrections prometheus.Counter
	driftLimited     prometheus.Counter
	resources        *prometheus.GaugeVec
	converged        prometheus.Gauge
	lastSuccess      prometheus.Gauge
	polls            *prometheus.CounterVec
	sourceUp         prometheus.Gauge
	refused          prometheus.Counter
	publishes        *prometheus.CounterVec
	watches          prometheus.Gauge
	stateRecoveries  prometheus.Counter
	stateErrors      *prometheus.CounterVec
	stateUp          prometheus.Gauge
	holdUntil        *prometheus.GaugeVec
	holdsExpired     prometheus.Counter
	webhooks         *prometheus.CounterVec
	notifications    *prometheus.CounterVec

	// tipTime is the source tip's commit time (Unix nanoseconds, 0:
	// unknown), maxTipAge the threshold (0: off); the tip's gauges read
	// them when scraped, so that the age is the age then.
	tipTime, maxTipAge atomic.Int64
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fsgit_runs_total", Help: "Runs, by what triggered them (commit, poll, watch, start) and result (ok, changes, failures).",
		}, []string{"trigger", "result"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fsgit_run_duration_seconds", Help: "Duration of runs, by trigger.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"trigger"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fsgit_resource_changes_total", Help: "Resources created, changed or deleted, by kind and outcome.",
		}, []string{"kind", "outcome"}),
		driftCorrections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fsgit_drift_corrections_total", Help: "Drift corrected on a file event.",
		}),
		driftLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fsgit_drift_rate_limited_total", Help: "File events left to the next poll because the resource was corrected too often.",
		}),
		resources: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fsgit_resources", Help: "Resources by outcome of their last run (drifted, failed, pending-destroy, ...).",
		}, []string{"outcome"}),
		converged: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fsgit_converged", Help: "1 when the node is converged on its desired revision.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fsgit_last_success_timestamp_seconds", Help: "Time of the last full run without failures.",
		}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fsgit_polls_total", Help: "Polls of the git source, by result (unchanged, new, error).",
		}, []string{"result"}),
		sourceUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fsgit_source_up", Help: "1 when the last poll of the git source worked.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fsgit_refused_commits_total", Help: "Commits refused (bad signature, invalid CUE).",
		}),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fsgit_status_publishes_total", Help: "Status branch publishes, by result (ok, error).",
		}, []string{"result"}),
		watches: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fsgit_watched_directories", Help: "Directories watched for drift.",
		}),
		stateRecoveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fsgit_state_recoveries_total", Help: "Corrupt state files moved aside and replaced by a fresh one built from the inventory copy.",
		}),
		stateErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fsgit_state_errors_total", Help: "Failures to open the state file or record a run in it, by operation (open, record).",
		}, []string{"op"}),
		stateUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fsgit_state_up", Help: "1 when the state file is open and the last run was recorded in it.",
		}),
	}
	m.holdUntil = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fsgit_hold_until_timestamp_seconds", Help: "When each hold in force ends, by held resource (\"node\": the whole node).",
	}, []string{"resource"})
	m.holdsExpired = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fsgit_holds_expired_total", Help: "Holds that ended by themselves.",
	})
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fsgit_webhook_requests_total", Help: "Webhook requests, by result (poll, limited, ping, refused, bad).",
	}, []string{"result"})
	m.notifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fsgit_notifications_total", Help: "Notifications, by result (sent, failed, dropped, limited).",
	}, []string{"result"})
	m.reg.MustRegister(m.holdUntil, m.holdsExpired, m.webhooks, m.notifications)
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fsgit_source_tip_timestamp_seconds", Help: "Commit time of the source branch's tip (0: not known yet).",
		}, func() float64 { return m.tipAt().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fsgit_source_tip_age_seconds", Help: "Age of the source branch's tip commit (0: not known yet); a mirror that stopped following the repository lets it grow.",
		}, func() float64 { return m.tipAge(time.Now()).Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fsgit_source_max_tip_age_seconds", Help: "source.maxTipAge: the tip age past which the source is reported frozen (0: off).",
		}, func() float64 { return time.Duration(m.maxTipAge.Load()).Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fsgit_source_frozen", Help: "1 when the source branch's tip is older than source.maxTipAge: the source (a mirror) looks frozen.",
		}, func() float64 {
			if limit := time.Duration(m.maxTipAge.Load()); limit > 0 && m.tipAge(time.Now()) > limit {
				return 1
			}
			return 0
		}),
	)
	m.reg.MustRegister(m.stateRecoveries, m.stateErrors, m.stateUp, m.runs, m.runDuration, m.changes, m.driftCorrections, m.driftLimited, m.resources,
		m.converged, m.lastSuccess, m.polls, m.sourceUp, m.refused, m.publishes, m.watches,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeRun counts a run's result and its changes.
func (m *metrics) observeRun(rep *reconciler.Report, trigger string) {
	result := "ok"
	switch code := rep.ExitCode(); {
	case code&4 != 0:
		result = "failures"
	case code&2 != 0:
		result = "changes"
	}
	m.runs.WithLabelValues(trigger, result).Inc()
	m.runDuration.WithLabelValues(trigger).Observe(rep.Duration.Seconds())
	for _, r := range rep.Results {
		switch r.Outcome {
		case reconciler.Created, reconciler.Changed, reconciler.Deleted:
			m.changes.WithLabelValues(r.ID.Kind(), string(r.Outcome)).Inc()
		}
	}
}

// observeView sets the per-outcome gauges from the current view.
func (m *metrics) observeView(view []reconciler.Result) {
	counts := map[reconciler.Outcome]int{}
	for _, r := range view {
		counts[r.Outcome]++
	}
	for _, o := range reconciler.Outcomes {
		m.resources.WithLabelValues(string(o)).Set(float64(counts[o]))
	}
}

// observeTip records the source tip's commit time and the threshold.
func (m *metrics) observeTip(when time.Time, maxTipAge time.Duration) {
	var ns int64
	if !when.IsZero() {
		ns = when.UnixNano()
	}
	m.tipTime.Store(ns)
	m.maxTipAge.Store(int64(maxTipAge))
}

// tipAt is the tip's commit time as a duration since the Unix epoch, 0
// when unknown.
func (m *metrics) tipAt() time.Duration { return time.Duration(m.tipTime.Load()) }

// tipAge is the tip's age at now, 0 when unknown.
func (m *metrics) tipAge(now time.Time) time.Duration {
	ns := m.tipTime.Load()
	if ns == 0 {
		return 0
	}
	return max(now.Sub(time.Unix(0, ns)), 0)
}
