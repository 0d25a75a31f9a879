package eviction

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"
)

// Pods lists the node's pods with their statuses (the agent's status
// cache).
type Pods interface {
	Pods() []v1.Pod
}

// Evictor stops a pod for good: Failed, with reason Evicted and message,
// its containers given grace seconds.
type Evictor interface {
	Evict(namespace, name string, uid types.UID, message string, grace int64) error
}

// Stats is the slice of the CRI RuntimeService the manager reads.
type Stats interface {
	ListPodSandboxStats(ctx context.Context, in *runtimeapi.ListPodSandboxStatsRequest, opts ...grpc.CallOption) (*runtimeapi.ListPodSandboxStatsResponse, error)
}

// ImageFS names the image filesystem (the CRI ImageService's ImageFsInfo).
type ImageFS interface {
	ImageFsInfo(ctx context.Context, in *runtimeapi.ImageFsInfoRequest, opts ...grpc.CallOption) (*runtimeapi.ImageFsInfoResponse, error)
}

// ImageReclaimer removes the images no container uses (image GC).
type ImageReclaimer interface {
	RemoveUnused(ctx context.Context) (freed uint64, err error)
}

// Config is what the manager needs.
type Config struct {
	Thresholds []Threshold
	// MaxPodGracePeriod caps pods' grace periods in soft evictions.
	MaxPodGracePeriod int64
	// PressureTransitionPeriod: 0 means 5 minutes.
	PressureTransitionPeriod time.Duration
	// Period between passes: 0 means 10 s, kubelet's.
	Period time.Duration
	// Root is on the node filesystem (nodefs); PodDir and LogDir hold the
	// pods' emptyDirs (<PodDir>/<uid>/volumes/empty-dir) and logs
	// (<LogDir>/<ns>_<name>_<uid>).
	Root, PodDir, LogDir string
	// MemInfo is /proc/meminfo and CgroupFS /sys/fs/cgroup unless set.
	MemInfo, CgroupFS string

	Pods    Pods
	Evictor Evictor
	Stats   Stats
	ImageFS ImageFS
	// Images may be nil: nothing is reclaimed before pods are evicted.
	Images ImageReclaimer
	Clock  clock.WithTicker
	Log    *slog.Logger
}

// Manager watches the signals and evicts pods when thresholds are met.
type Manager struct {
	cfg       Config
	log       *slog.Logger
	clock     clock.WithTicker
	evictions *prometheus.CounterVec

	// measure reads the signals (observe.go; replaced in tests).
	measure func(context.Context) (map[Signal]reading, error)

	mu       sync.Mutex
	st       state
	pressure Pressure
}

// Pressure is the node's condition as the eviction manager sees it.
type Pressure struct {
	Memory bool `json:"memoryPressure"`
	Disk   bool `json:"diskPressure"`
	// Signals are the thresholds met at the last pass, with their
	// readings: "nodefs.available 4Mi < 10Mi".
	Signals []string `json:"thresholdsMet,omitempty"`
}

// New returns a manager; Run drives it.
func New(cfg Config) *Manager {
	if cfg.PressureTransitionPeriod == 0 {
		cfg.PressureTransitionPeriod = 5 * time.Minute
	}
	if cfg.Period == 0 {
		cfg.Period = 10 * time.Second
	}
	if cfg.MemInfo == "" {
		cfg.MemInfo = "/proc/meminfo"
	}
	if cfg.CgroupFS == "" {
		cfg.CgroupFS = "/sys/fs/cgroup"
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cfg: cfg, log: cfg.Log, clock: cfg.Clock,
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubelet_evictions",
			Help: "Cumulative number of pod evictions by eviction signal.",
		}, []string{"eviction_signal"}),
	}
	m.measure = m.measureSignals
	return m
}

// Collector exposes kubelet_evictions.
func (m *Manager) Collector() prometheus.Collector { return m.evictions }

// Pressure is the outcome of the last pass.
func (m *Manager) Pressure() Pressure {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pressure
	p.Signals = append([]string(nil), p.Signals...)
	return p
}

// Run makes a pass every Period until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	if len(m.cfg.Thresholds) == 0 {
		m.log.Info("eviction: no thresholds: pods are never evicted")
		return
	}
	t := m.clock.NewTicker(m.cfg.Period)
	defer t.Stop()
	for {
		if err := m.Synchronize(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("eviction", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// Synchronize is one pass: measure the signals; if a threshold is met,
// reclaim what the node can (unused images, for the filesystems) and
// measure again; if it is still met, evict the first pod of the ranking.
// At most one pod is evicted per pass, as kubelet does, so that the next
// pass sees what that freed.
func (m *Manager) Synchronize(ctx context.Context) error {
	readings, err := m.measure(ctx)
	if err != nil {
		return err
	}
	d := m.record(readings)
	if d.act == nil {
		return nil
	}
	t := *d.act
	if t.Signal.disk() && m.cfg.Images != nil {
		freed, err := m.cfg.Images.RemoveUnused(ctx)
		if err != nil {
			m.log.Warn("eviction: image garbage collection", "err", err)
		}
		if freed > 0 {
			if readings, err = m.measure(ctx); err != nil {
				return err
			}
			if !met(t, readings[t.Signal], true) {
				m.log.Info("eviction: unused images removed; the threshold is no longer met",
					"signal", t.Signal, "threshold", t.String(), "freed", freed)
				return nil
			}
		}
	}
	usages, err := m.podUsages(ctx, m.cfg.Pods.Pods())
	if err != nil {
		return err
	}
	ranked := rank(t.Signal, usages)
	if len(ranked) == 0 {
		m.log.Warn("eviction: threshold met but no pod may be evicted", "signal", t.Signal, "threshold", t.String())
		return nil
	}
	var errs []error
	for _, u := range ranked {
		msg := message(t, readings[t.Signal], u)
		grace := gracePeriod(t, u.pod, m.cfg.MaxPodGracePeriod)
		err := m.cfg.Evictor.Evict(u.pod.Namespace, u.pod.Name, u.pod.UID, msg, grace)
		if err != nil {
			errs = append(errs, err)
			continue // the next in the ranking, as kubelet
		}
		m.evictions.WithLabelValues(string(t.Signal)).Inc()
		m.log.Warn("eviction: pod evicted", "pod", u.pod.Namespace+"/"+u.pod.Name, "signal", t.Signal, "message", msg)
		return nil
	}
	return errors.Join(errs...)
}

// record decides on the readings and keeps the outcome.
func (m *Manager) record(readings map[Signal]reading) decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := decide(m.cfg.Thresholds, readings, m.st, m.clock.Now(), m.cfg.PressureTransitionPeriod)
	m.st = d.next
	p := Pressure{Memory: d.memoryPressure, Disk: d.diskPressure}
	for _, t := range m.cfg.Thresholds {
		if r, ok := readings[t.Signal]; ok && met(t, r, false) {
			res := t.Signal.resource()
			p.Signals = append(p.Signals, string(t.Signal)+" "+amount(res, r.available)+" < "+amount(res, t.Limit(r.capacity)))
		}
	}
	if p.Memory != m.pressure.Memory || p.Disk != m.pressure.Disk {
		m.log.Info("eviction: node pressure", "memoryPressure", p.Memory, "diskPressure", p.Disk, "met", p.Signals)
	}
	m.pressure = p
	return d
}
