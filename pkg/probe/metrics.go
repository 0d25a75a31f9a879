package probe

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// probeTotal is kubelet's prober_probe_total, so dashboards built for
// kubelet's /metrics/probes read berth's as they are.
var probeTotal = prometheus.NewDesc("prober_probe_total",
	"Cumulative number of a liveness, readiness or startup probe for a container by result.",
	[]string{"probe_type", "result", "container", "pod", "namespace"}, nil)

// Collector exposes the prober's counts to a Prometheus registry.
func (m *Manager) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Manager }

func (c collector) Describe(ch chan<- *prometheus.Desc) { ch <- probeTotal }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for t, n := range c.m.Totals() {
		ns, name, _ := strings.Cut(t.Pod, "/")
		ch <- prometheus.MustNewConstMetric(probeTotal, prometheus.CounterValue, float64(n),
			t.Kind.String(), t.Result, t.Container, name, ns)
	}
}
