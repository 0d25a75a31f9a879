// Package metrics is berth's Prometheus registry: kubelet's metric names
// where kubelet has the metric, so that dashboards and alerts written for
// kubelet read berth unchanged. It measures the agent from outside: the
// CRI calls through a client interceptor, the pods from the status cache.
package metrics

import (
	"context"
	"strings"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Registry holds the metrics; serve Registry.Gatherer.
type Registry struct {
	reg          *prometheus.Registry
	ops          *prometheus.HistogramVec
	opErrors     *prometheus.CounterVec
	podStart     prometheus.Histogram
	startedTotal *prometheus.CounterVec
}

// New registers the Go runtime's and the process's collectors and the
// runtime operation metrics.
func New() *Registry {
	r := &Registry{
		reg: prometheus.NewRegistry(),
		ops: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: "kubelet", Name: "runtime_operations_duration_seconds",
			Help:    "Duration in seconds of runtime operations. Broken down by operation type.",
			Buckets: prometheus.ExponentialBuckets(.005, 2.5, 14),
		}, []string{"operation_type"}),
		opErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "kubelet", Name: "runtime_operations_errors_total",
			Help: "Cumulative number of runtime operation errors by operation type.",
		}, []string{"operation_type"}),
		podStart: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: "kubelet", Name: "pod_start_duration_seconds",
			Help:    "Duration in seconds from the agent seeing a pod for the first time to the pod starting to run.",
			Buckets: []float64{0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600},
		}),
		startedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "kubelet", Name: "started_containers_total",
			Help: "Cumulative number of containers started.",
		}, []string{"container_type"}),
	}
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.ops, r.opErrors, r.podStart, r.startedTotal)
	return r
}

// Gatherer is what /metrics serves.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// MustRegister adds more collectors (the upstream plugin's, …).
func (r *Registry) MustRegister(cs ...prometheus.Collector) { r.reg.MustRegister(cs...) }

// RuntimeInterceptor times every CRI call of the client it is installed
// on, as kubelet's instrumented runtime service does.
func (r *Registry) RuntimeInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		op := operationType(method)
		began := time.Now()
		err := invoker(ctx, method, req, reply, cc, opts...)
		r.ops.WithLabelValues(op).Observe(time.Since(began).Seconds())
		if err != nil {
			r.opErrors.WithLabelValues(op).Inc()
		}
		return err
	}
}

// operationType is kubelet's name of a CRI method:
// /runtime.v1.RuntimeService/RunPodSandbox is run_podsandbox.
func operationType(method string) string {
	name := method[strings.LastIndex(method, "/")+1:]
	name = strings.ReplaceAll(name, "PodSandbox", "Podsandbox")
	var b strings.Builder
	for i, c := range name {
		if unicode.IsUpper(c) {
			if i > 0 {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}

// podStatuses is the agent's status cache as the pod metrics read it.
type podStatuses interface {
	List() ([]v1.Pod, uint64)
	Changed() (<-chan struct{}, uint64)
}

// WatchPods keeps the pod metrics from the status cache until ctx ends:
// kubelet_running_pods and kubelet_running_containers at each scrape,
// kubelet_pod_start_duration_seconds and kubelet_started_containers_total
// as pods change.
func (r *Registry) WatchPods(ctx context.Context, pods podStatuses, now func() time.Time) {
	r.reg.MustRegister(&runningCollector{pods: pods})
	w := &podWatcher{r: r, now: now, seen: map[types.UID]time.Time{}, started: map[string]bool{}}
	for {
		changed, _ := pods.Changed()
		list, _ := pods.List()
		w.pass(list)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// podWatcher turns status changes into the start metrics.
type podWatcher struct {
	r       *Registry
	now     func() time.Time
	seen    map[types.UID]time.Time // first seen; zero once it ran
	started map[string]bool         // container IDs seen running
}

func (w *podWatcher) pass(list []v1.Pod) {
	t := w.now()
	present := map[types.UID]bool{}
	ids := map[string]bool{}
	for _, p := range list {
		present[p.UID] = true
		first, ok := w.seen[p.UID]
		if !ok {
			first = t
			w.seen[p.UID] = t
		}
		if !first.IsZero() && podRunning(&p) {
			w.r.podStart.Observe(t.Sub(first).Seconds())
			w.seen[p.UID] = time.Time{}
		}
		for _, c := range containerStatuses(&p) {
			if c.status.State.Running == nil || c.status.ContainerID == "" {
				continue
			}
			ids[c.status.ContainerID] = true
			if !w.started[c.status.ContainerID] {
				w.r.startedTotal.WithLabelValues(c.kind).Inc()
			}
		}
	}
	for uid := range w.seen {
		if !present[uid] {
			delete(w.seen, uid)
		}
	}
	w.started = ids
}

type typedStatus struct {
	kind   string // kubelet's container_type: container, init_container
	status v1.ContainerStatus
}

func containerStatuses(p *v1.Pod) []typedStatus {
	var out []typedStatus
	for _, s := range p.Status.InitContainerStatuses {
		out = append(out, typedStatus{"init_container", s})
	}
	for _, s := range p.Status.ContainerStatuses {
		out = append(out, typedStatus{"container", s})
	}
	return out
}

// podRunning: every regular container has started.
func podRunning(p *v1.Pod) bool {
	if len(p.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Running == nil && s.State.Terminated == nil {
			return false
		}
	}
	return true
}

var (
	runningPodsDesc = prometheus.NewDesc("kubelet_running_pods",
		"Number of pods with a running container.", nil, nil)
	runningContainersDesc = prometheus.NewDesc("kubelet_running_containers",
		"Number of containers currently running.", []string{"container_state"}, nil)
)

// runningCollector counts pods and containers at scrape time.
type runningCollector struct{ pods podStatuses }

func (c *runningCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runningPodsDesc
	ch <- runningContainersDesc
}

func (c *runningCollector) Collect(ch chan<- prometheus.Metric) {
	list, _ := c.pods.List()
	pods := 0
	states := map[string]int{"running": 0, "exited": 0, "created": 0}
	for _, p := range list {
		running := false
		for _, s := range containerStatuses(&p) {
			switch st := s.status; {
			case st.State.Running != nil:
				states["running"]++
				running = true
			case st.State.Terminated != nil, st.LastTerminationState.Terminated != nil:
				states["exited"]++
			case st.ContainerID != "":
				states["created"]++
			}
		}
		if running {
			pods++
		}
	}
	ch <- prometheus.MustNewConstMetric(runningPodsDesc, prometheus.GaugeValue, float64(pods))
	for state, n := range states {
		ch <- prometheus.MustNewConstMetric(runningContainersDesc, prometheus.GaugeValue, float64(n), state)
	}
}
