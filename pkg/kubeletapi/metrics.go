package kubeletapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// MetricsRuntime is the slice of the CRI that /metrics/cadvisor needs:
// the runtime's container metrics, which it names and labels as cAdvisor
// does (kubelet's PodAndContainerStatsFromCRI).
type MetricsRuntime interface {
	ListMetricDescriptors(ctx context.Context, in *runtimeapi.ListMetricDescriptorsRequest, opts ...grpc.CallOption) (*runtimeapi.ListMetricDescriptorsResponse, error)
	ListPodSandboxMetrics(ctx context.Context, in *runtimeapi.ListPodSandboxMetricsRequest, opts ...grpc.CallOption) (*runtimeapi.ListPodSandboxMetricsResponse, error)
}

// criMetrics turns the runtime's metrics into Prometheus series. The
// descriptors never change while the runtime runs: they are asked for
// until the runtime first answers, then kept.
type criMetrics struct {
	rt MetricsRuntime

	mu    sync.Mutex
	descs map[string]*prometheus.Desc
}

func (c *criMetrics) descriptors(ctx context.Context) (map[string]*prometheus.Desc, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.descs != nil {
		return c.descs, nil
	}
	resp, err := c.rt.ListMetricDescriptors(ctx, &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		return nil, err
	}
	c.descs = map[string]*prometheus.Desc{}
	for _, d := range resp.GetDescriptors() {
		c.descs[d.GetName()] = prometheus.NewDesc(d.GetName(), d.GetHelp(), d.GetLabelKeys(), nil)
	}
	return c.descs, nil
}

// serveHTTP answers one scrape with what the runtime measures now.
func (c *criMetrics) serveHTTP(w http.ResponseWriter, r *http.Request) {
	descs, err := c.descriptors(r.Context())
	if err != nil {
		writeError(w, runtimeError(err, "metric descriptors"))
		return
	}
	resp, err := c.rt.ListPodSandboxMetrics(r.Context(), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		writeError(w, runtimeError(err, "pod metrics"))
		return
	}
	var series constMetrics
	add := func(ms []*runtimeapi.Metric) {
		for _, m := range ms {
			if pm, ok := promMetric(descs, m); ok {
				series = append(series, pm)
			}
		}
	}
	for _, pod := range resp.GetPodMetrics() {
		add(pod.GetMetrics())
		for _, ctr := range pod.GetContainerMetrics() {
			add(ctr.GetMetrics())
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(series)
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).ServeHTTP(w, r)
}

// promMetric is one CRI series; false for one without a descriptor or
// whose labels do not fit it.
func promMetric(descs map[string]*prometheus.Desc, m *runtimeapi.Metric) (prometheus.Metric, bool) {
	desc, ok := descs[m.GetName()]
	if !ok {
		return nil, false
	}
	typ := prometheus.GaugeValue
	if m.GetMetricType() == runtimeapi.MetricType_COUNTER {
		typ = prometheus.CounterValue
	}
	pm, err := prometheus.NewConstMetric(desc, typ, float64(m.GetValue().GetValue()), m.GetLabelValues()...)
	if err != nil {
		return nil, false
	}
	// A runtime that measured ahead of the scrape says when.
	if m.GetTimestamp() != 0 {
		pm = prometheus.NewMetricWithTimestamp(time.Unix(0, m.GetTimestamp()), pm)
	}
	return pm, true
}

// constMetrics is an unchecked collector of series made beforehand.
type constMetrics []prometheus.Metric

func (constMetrics) Describe(chan<- *prometheus.Desc) {}

func (c constMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}
