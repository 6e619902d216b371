package web

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's own: its polls, the fleet's size and its
// requests, with the Go runtime's and the process's.
type metrics struct {
	reg            *prometheus.Registry
	polls          *prometheus.CounterVec
	pollSeconds    prometheus.Histogram
	nodes          prometheus.Gauge
	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fsgit_serve_polls_total",
			Help: "Polls of the status repository, by result: unchanged (no status ref moved), changed (read again) or error.",
		}, []string{"result"}),
		pollSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fsgit_serve_poll_seconds",
			Help:    "Time a poll of the status repository took, reading included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}),
		nodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fsgit_serve_nodes",
			Help: "Node documents in the status repository at the last read.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fsgit_serve_requests_total",
			Help: "HTTP requests, by page and status code.",
		}, []string{"page", "code"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fsgit_serve_request_seconds",
			Help:    "Time to serve a request, by page.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 3, 10),
		}, []string{"page"}),
	}
	m.reg.MustRegister(m.polls, m.pollSeconds, m.nodes, m.requests, m.requestSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
