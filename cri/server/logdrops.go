package server

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-project/berth/cri/shim"
	"github.com/berth-project/berth/cri/store"
)

// logDrops are the log records each running container's shim could not
// write (a full or failing log filesystem), as last asked.
type logDrops struct {
	mu     sync.Mutex
	counts map[string]droppedRecords // by container ID
}

type droppedRecords struct {
	namespace, pod, container string
	n                         uint64
}

// logDropsPeriod is how often the shims are asked.
const logDropsPeriod = 10 * time.Second

// watchLogDrops asks every running container's shim how many of its log
// records were dropped, each period until ctx ends, and logs a warning
// naming the container and its log whenever that number grew: the
// container keeps running, and this is how its owner learns that output
// is being lost.
func (s *Service) watchLogDrops(ctx context.Context) {
	t := time.NewTicker(logDropsPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.pollLogDrops(ctx)
	}
}

func (s *Service) pollLogDrops(ctx context.Context) {
	seen := map[string]droppedRecords{}
	for _, c := range s.store.Containers() {
		if c.Status().State != store.ContainerRunning || c.Meta.LogPath == "" {
			continue
		}
		sb, err := s.store.Sandbox(c.Meta.SandboxID)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		n, err := shim.LogDropped(cctx, sb.Status().Shim.Socket, c.Meta.ID)
		cancel()
		if err != nil {
			continue // a shim that does not answer is another problem, reported elsewhere
		}
		md := sb.Config().GetMetadata()
		seen[c.Meta.ID] = droppedRecords{namespace: md.GetNamespace(), pod: md.GetName(), container: c.Config().GetMetadata().GetName(), n: n}
	}
	s.logDrops.mu.Lock()
	prev := s.logDrops.counts
	s.logDrops.counts = seen
	s.logDrops.mu.Unlock()
	for id, d := range seen {
		if was := prev[id].n; d.n > was {
			s.log.Warn("container log records dropped: its log filesystem is full or failing; the container runs on",
				"container", id, "pod", d.namespace+"/"+d.pod, "name", d.container, "dropped", d.n-was, "droppedTotal", d.n)
		}
	}
}

var (
	shimsDesc = prometheus.NewDesc("berth_shims",
		"Number of pod shims running (one per ready sandbox).", nil, nil)
	logDroppedDesc = prometheus.NewDesc("berth_container_log_dropped_records_total",
		"Log records of a running container that its shim could not write (a full or failing log filesystem), as last asked.",
		[]string{"namespace", "pod", "container"}, nil)
)

// Collector exposes berth_shims and berth_container_log_dropped_records_total.
func (s *Service) Collector() prometheus.Collector { return runtimeCollector{s} }

type runtimeCollector struct{ s *Service }

func (c runtimeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- shimsDesc
	ch <- logDroppedDesc
}

func (c runtimeCollector) Collect(ch chan<- prometheus.Metric) {
	shims := 0
	for _, sb := range c.s.store.Sandboxes() {
		if st := sb.Status(); st.State == store.SandboxReady && st.Shim.Alive() {
			shims++
		}
	}
	ch <- prometheus.MustNewConstMetric(shimsDesc, prometheus.GaugeValue, float64(shims))
	c.s.logDrops.mu.Lock()
	defer c.s.logDrops.mu.Unlock()
	for _, d := range c.s.logDrops.counts {
		ch <- prometheus.MustNewConstMetric(logDroppedDesc, prometheus.CounterValue, float64(d.n), d.namespace, d.pod, d.container)
	}
}
