// Package metrics is berth's Prometheus registry: kubelet's metric names
// where kubelet has the metric, so that dashboards and alerts written for
// kubelet read berth unchanged. It measures the agent from outside: the
// CRI calls through a client interceptor, the pods from the status cache.
package metrics

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	reg           *prometheus.Registry
	ops           *prometheus.HistogramVec
	opErrors      *prometheus.CounterVec
	podStart      prometheus.Histogram
	podStartSLI   prometheus.Histogram
	startedTotal  *prometheus.CounterVec
	restartedPods *prometheus.CounterVec
	podWorker     *prometheus.HistogramVec
}

// kubelet's buckets of the pod start durations.
var podStartBuckets = []float64{0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600}

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
			Buckets: podStartBuckets,
		}),
		podStartSLI: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: "kubelet", Name: "pod_start_sli_duration_seconds",
			Help:    "Duration in seconds to start a pod, excluding the time from its first image pull starting to its last one ending, from the agent seeing it to all its containers started.",
			Buckets: podStartBuckets,
		}),
		restartedPods: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "kubelet", Name: "restarted_pods_total",
			Help: "Number of pods that were removed and came back with the same UID while the agent was watching them (static pods whose manifest returned).",
		}, []string{"static"}),
		podWorker: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: "kubelet", Name: "pod_worker_duration_seconds",
			Help:    "Duration in seconds to sync a single pod. Broken down by operation type: create, update, sync or kill.",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation_type"}),
		startedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "kubelet", Name: "started_containers_total",
			Help: "Cumulative number of containers started.",
		}, []string{"container_type"}),
	}
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.ops, r.opErrors, r.podStart, r.podStartSLI, r.startedTotal, r.restartedPods, r.podWorker)
	return r
}

// ObservePodWorker records one pass of a pod worker (the agent's
// Config.SyncDuration).
func (r *Registry) ObservePodWorker(operation string, d time.Duration) {
	r.podWorker.WithLabelValues(operation).Observe(d.Seconds())
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

// eventSource is the agent's event recorder: the image pulls' events
// give the start SLI what to leave out.
type eventSource interface {
	Watch(func(v1.Event))
}

// WatchPods registers the pod metrics and returns what keeps them, from
// the status cache (and the pulls from the events, watched from now on),
// until ctx ends: kubelet_running_pods and kubelet_running_containers at
// each scrape; kubelet_pod_start_duration_seconds,
// kubelet_pod_start_sli_duration_seconds, kubelet_started_containers_total
// and kubelet_restarted_pods_total as pods change.
func (r *Registry) WatchPods(pods podStatuses, events eventSource, now func() time.Time) (run func(ctx context.Context)) {
	r.reg.MustRegister(&runningCollector{pods: pods})
	w := newPodWatcher(r, now)
	if events != nil {
		events.Watch(w.event)
	}
	return func(ctx context.Context) {
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
}

// podWatcher turns status changes into the start metrics.
type podWatcher struct {
	r       *Registry
	now     func() time.Time
	seen    map[types.UID]time.Time // first seen; zero once it ran
	started map[string]bool         // container IDs seen running
	// gone are UIDs that left the cache, oldest first, for the restarts.
	gone []types.UID

	mu    sync.Mutex
	pulls map[types.UID]pullSpan // from the events' goroutines
}

// pullSpan is from the first pull's start to the last pull's end.
type pullSpan struct{ first, last time.Time }

// maxGone bounds the UIDs remembered for kubelet_restarted_pods_total.
const maxGone = 1024

func newPodWatcher(r *Registry, now func() time.Time) *podWatcher {
	return &podWatcher{r: r, now: now, seen: map[types.UID]time.Time{}, started: map[string]bool{}, pulls: map[types.UID]pullSpan{}}
}

// event notes the image pulls of a pod: "Pulling" starts one, kubelet's
// "Successfully pulled …" ends it.
func (w *podWatcher) event(e v1.Event) {
	pulling := e.Reason == "Pulling"
	pulled := e.Reason == "Pulled" && strings.HasPrefix(e.Message, "Successfully pulled")
	if !pulling && !pulled {
		return
	}
	at := e.LastTimestamp.Time
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.pulls[e.InvolvedObject.UID]
	if pulling && (s.first.IsZero() || at.Before(s.first)) {
		s.first = at
	}
	if pulled && at.After(s.last) {
		s.last = at
	}
	w.pulls[e.InvolvedObject.UID] = s
}

func (w *podWatcher) pulled(uid types.UID) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.pulls[uid]
	if s.first.IsZero() || !s.last.After(s.first) {
		return 0
	}
	return s.last.Sub(s.first)
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
			if i := slices.Index(w.gone, p.UID); i >= 0 {
				w.gone = slices.Delete(w.gone, i, i+1)
				w.r.restartedPods.WithLabelValues(strconv.FormatBool(p.Annotations["kubernetes.io/config.source"] == "file")).Inc()
			}
		}
		if !first.IsZero() && podRunning(&p) {
			d := t.Sub(first)
			w.r.podStart.Observe(d.Seconds())
			w.r.podStartSLI.Observe(max(d-w.pulled(p.UID), 0).Seconds())
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
			w.gone = append(w.gone, uid)
			w.mu.Lock()
			delete(w.pulls, uid)
			w.mu.Unlock()
		}
	}
	if len(w.gone) > maxGone {
		w.gone = slices.Delete(w.gone, 0, len(w.gone)-maxGone)
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
