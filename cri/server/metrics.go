package server

import (
	"context"
	"slices"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/stats"
	"github.com/berth-project/berth/cri/store"
)

// berth serves a subset of cAdvisor's container metrics through the CRI
// (kubelet's /metrics/cadvisor with PodAndContainerStatsFromCRI), with
// cAdvisor's names, types and label names:
//
//	container  the container's name; "" on the pod's own series
//	id         the container's (or, on the pod's series, sandbox's) ID
//	image      the container's image as it was asked for; "" for the pod
//	name       the container's name, or the pod's on its series
//	namespace, pod
//	interface  on network series only
//
// CRI metric values are unsigned integers, so the "_seconds_total" CPU
// counters are whole seconds (usage_core_nano_seconds in
// ContainerStats has the precision).
var (
	metricLabels        = []string{"container", "id", "image", "name", "namespace", "pod"}
	networkMetricLabels = []string{"container", "id", "image", "interface", "name", "namespace", "pod"}
)

// cgroupMetric is a series derived from a cgroup sample, reported per
// container and for the pod as a whole.
type cgroupMetric struct {
	name, help string
	typ        runtimeapi.MetricType
	value      func(sm *stats.Sample) (v uint64, ok bool)
}

var cgroupMetrics = []cgroupMetric{
	{"container_cpu_usage_seconds_total", "Cumulative CPU time consumed, in whole seconds.", runtimeapi.MetricType_COUNTER,
		func(sm *stats.Sample) (uint64, bool) { return sm.CPU.UsageNanos / 1e9, true }},
	{"container_cpu_user_seconds_total", "Cumulative user CPU time consumed, in whole seconds.", runtimeapi.MetricType_COUNTER,
		func(sm *stats.Sample) (uint64, bool) { return sm.CPU.UserNanos / 1e9, true }},
	{"container_cpu_system_seconds_total", "Cumulative system CPU time consumed, in whole seconds.", runtimeapi.MetricType_COUNTER,
		func(sm *stats.Sample) (uint64, bool) { return sm.CPU.SystemNanos / 1e9, true }},
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", runtimeapi.MetricType_GAUGE,
		func(sm *stats.Sample) (uint64, bool) { return sm.Memory.Usage, true }},
	{"container_memory_working_set_bytes", "Current working set in bytes.", runtimeapi.MetricType_GAUGE,
		func(sm *stats.Sample) (uint64, bool) { return sm.Memory.WorkingSet, true }},
	{"container_memory_rss", "Size of RSS in bytes.", runtimeapi.MetricType_GAUGE,
		func(sm *stats.Sample) (uint64, bool) { return sm.Memory.RSS, true }},
	{"container_memory_cache", "Number of bytes of page cache memory.", runtimeapi.MetricType_GAUGE,
		func(sm *stats.Sample) (uint64, bool) { return sm.Memory.Cache, true }},
	{"container_memory_swap", "Container swap usage in bytes.", runtimeapi.MetricType_GAUGE,
		func(sm *stats.Sample) (uint64, bool) { return sm.Memory.Swap, sm.Memory.SwapKnown }},
	{"container_spec_memory_limit_bytes", "Memory limit for the container, in bytes; 0 when there is none.", runtimeapi.MetricType_GAUGE,
		func(sm *stats.Sample) (uint64, bool) { return sm.Memory.Limit, true }},
	{"container_threads", "Number of tasks (processes and threads) in the container.", runtimeapi.MetricType_GAUGE,
		func(sm *stats.Sample) (uint64, bool) { return sm.Tasks, true }},
}

const startTimeMetric = "container_start_time_seconds"

// networkMetric is a series per interface of the pod's network namespace.
type networkMetric struct {
	name, help string
	value      func(i *stats.Interface) uint64
}

var networkMetrics = []networkMetric{
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", func(i *stats.Interface) uint64 { return i.RxBytes }},
	{"container_network_receive_packets_total", "Cumulative count of packets received.", func(i *stats.Interface) uint64 { return i.RxPackets }},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", func(i *stats.Interface) uint64 { return i.RxErrors }},
	{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", func(i *stats.Interface) uint64 { return i.RxDropped }},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", func(i *stats.Interface) uint64 { return i.TxBytes }},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", func(i *stats.Interface) uint64 { return i.TxPackets }},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", func(i *stats.Interface) uint64 { return i.TxErrors }},
	{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", func(i *stats.Interface) uint64 { return i.TxDropped }},
}

// ListMetricDescriptors names every metric ListPodSandboxMetrics reports.
func (s *Service) ListMetricDescriptors(ctx context.Context, req *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	resp := &runtimeapi.ListMetricDescriptorsResponse{}
	for _, m := range cgroupMetrics {
		resp.Descriptors = append(resp.Descriptors, &runtimeapi.MetricDescriptor{Name: m.name, Help: m.help, LabelKeys: metricLabels})
	}
	resp.Descriptors = append(resp.Descriptors, &runtimeapi.MetricDescriptor{
		Name: startTimeMetric, Help: "Start time of the container since unix epoch in seconds.", LabelKeys: metricLabels,
	})
	for _, m := range networkMetrics {
		resp.Descriptors = append(resp.Descriptors, &runtimeapi.MetricDescriptor{Name: m.name, Help: m.help, LabelKeys: networkMetricLabels})
	}
	return resp, nil
}

// ListPodSandboxMetrics reports the metrics of every ready pod and of its
// containers that have a cgroup. Values are read live (timestamp 0).
func (s *Service) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	resp := &runtimeapi.ListPodSandboxMetricsResponse{}
	for _, sb := range s.store.Sandboxes() {
		if sb.Status().State != store.SandboxReady {
			continue
		}
		u, err := s.readSandbox(sb)
		if err != nil {
			s.log.Warn("pod metrics unreadable", "sandbox", sb.Meta.ID, "error", err)
		}
		resp.PodMetrics = append(resp.PodMetrics, podMetrics(sb, u))
	}
	return resp, nil
}

// podMetrics builds a pod's series from a reading.
func podMetrics(sb *store.Sandbox, u podUsage) *runtimeapi.PodSandboxMetrics {
	md := sb.Config().GetMetadata()
	podLabels := []string{"", sb.Meta.ID, "", md.GetName(), md.GetNamespace(), md.GetName()}
	out := &runtimeapi.PodSandboxMetrics{PodSandboxId: sb.Meta.ID}
	if u.cgroup != nil {
		out.Metrics = cgroupSeries(u.cgroup, podLabels)
	}
	if u.network != nil {
		for _, iface := range u.network.Interfaces {
			// networkMetricLabels: interface goes between image and name.
			labels := slices.Insert(slices.Clone(podLabels), 3, iface.Name)
			for _, m := range networkMetrics {
				out.Metrics = append(out.Metrics, &runtimeapi.Metric{
					Name: m.name, MetricType: runtimeapi.MetricType_COUNTER, LabelValues: labels, Value: u64(m.value(&iface)),
				})
			}
		}
	}
	for i, c := range u.containers {
		sm := u.usage[i].cgroup
		if sm == nil {
			continue
		}
		cfg := c.Config()
		name := cfg.GetMetadata().GetName()
		labels := []string{name, c.Meta.ID, cfg.GetImage().GetImage(), name, md.GetNamespace(), md.GetName()}
		cm := &runtimeapi.ContainerMetrics{ContainerId: c.Meta.ID, Metrics: cgroupSeries(sm, labels)}
		if started := c.Status().StartedAt; started > 0 {
			cm.Metrics = append(cm.Metrics, &runtimeapi.Metric{
				Name: startTimeMetric, MetricType: runtimeapi.MetricType_GAUGE, LabelValues: labels, Value: u64(uint64(started / 1e9)),
			})
		}
		out.ContainerMetrics = append(out.ContainerMetrics, cm)
	}
	return out
}

func cgroupSeries(sm *stats.Sample, labels []string) []*runtimeapi.Metric {
	var out []*runtimeapi.Metric
	for _, m := range cgroupMetrics {
		if v, ok := m.value(sm); ok {
			out = append(out, &runtimeapi.Metric{Name: m.name, MetricType: m.typ, LabelValues: labels, Value: u64(v)})
		}
	}
	return out
}
