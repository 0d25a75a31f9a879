package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"

	"github.com/berth-project/berth/pkg/events"
	"github.com/berth-project/berth/pkg/podstatus"
	"github.com/berth-project/berth/pkg/probe"
	"github.com/berth-project/berth/pkg/userns"
)

// Config is what the agent needs.
type Config struct {
	NodeName string
	// LogDir holds the pods' container logs, as kubelet's /var/log/pods.
	LogDir string
	// PodDir holds the pods' volumes and termination messages:
	// <PodDir>/<uid>/...
	PodDir string
	// ResolvConf is the node's resolver configuration ("": none),
	// ClusterDNS and ClusterDomain the cluster's, for ClusterFirst pods:
	// kubelet's settings of the same names.
	ResolvConf    string
	ClusterDNS    []string
	ClusterDomain string
	// MaxRestartPeriod caps the restart back-off (kubelet's
	// crashLoopBackOff.maxContainerRestartPeriod); 0 means 5 minutes.
	MaxRestartPeriod time.Duration
	// MaxParallelImagePulls bounds the image pulls in flight; 0 means no
	// bound, 1 is kubelet's serializeImagePulls.
	MaxParallelImagePulls int
	// CgroupRoot is the parent of the QoS hierarchy ("kubepods"), in the
	// runtime's cgroup driver's syntax; "" puts pods where the runtime
	// puts them by default.
	CgroupRoot string
	// SwapBehavior is kubelet's memorySwap.swapBehavior: "NoSwap" or ""
	// (no container swaps), "LimitedSwap" (see swapLimit); cgroup v2 only.
	SwapBehavior string
	// SystemdCgroups names the pod cgroups as slices (kubepods-burstable-
	// pod<uid>.slice) for a runtime using the systemd cgroup driver.
	SystemdCgroups bool
	// Allocatable is what pods may ask of the node (its capacity less
	// what eviction holds back, with maxPods as pods); a pod that does
	// not fit next to those admitted before is refused. nil admits all.
	Allocatable v1.ResourceList
	Runtime     runtimeService
	Images      imageService
	// HostIDs hands out the host IDs of pods with hostUsers: false; nil
	// makes one with a block for each of Allocatable's pods (110 if unset).
	HostIDs hostIDs
	// Status receives every pod's status; New makes one if nil.
	Status *podstatus.Cache
	// Events receives the pods' events; New makes one if nil.
	Events *events.Recorder
	// LogLinkDir gets kubelet's links to containers' logs
	// (/var/log/containers); "" makes none.
	LogLinkDir string
	// VolumeFiles supplies configMap, secret and projected volumes (the
	// upstream plugin); without it such volumes fail.
	VolumeFiles volumeFiles
	// Objects supplies the configMaps and secrets of containers'
	// environments (the upstream plugin; nil without one).
	Objects objectData
	// Terminated, if set, is called once everything of a pod's version
	// (its UID) is gone from the node. It must not block.
	Terminated func(namespace, name string, uid types.UID)
	// SyncDuration, if set, is told how long each pass of a pod worker
	// took and what it was, as kubelet's pod worker metric has it:
	// "create" (a version's first pass), "update" (its spec changed),
	// "sync" or "kill" (a pod being removed or deleted).
	SyncDuration func(operation string, d time.Duration)
	// Clock is injected for tests; the real clock if nil.
	Clock clock.WithTicker
	Log   *slog.Logger
	// Resync is the safety-net relist period of each pod; runtime events
	// wake a pod's worker at once. Runtimes without events are relisted
	// every PollInterval.
	Resync, PollInterval time.Duration
}

// Manager runs one worker per pod.
type Manager struct {
	cfg            Config
	clock          clock.WithTicker
	status         *podstatus.Cache
	events         *events.Recorder
	prober         *probe.Manager
	memoryCapacity int64
	cpuCapacity    int64 // millicores
	hostIPs        []string
	pullSlots      chan struct{} // one per pull in flight; nil: no bound
	ids            hostIDs       // of pods with their own user namespace
	hugePageSizes  []string      // the node's, as the cgroup names them ("2MB")
	unified        bool          // the host runs cgroup v2
	swapCapacity   int64         // the node's swap, in bytes

	idsMu    sync.Mutex
	idsKnown bool // the blocks the runtime's sandboxes hold were taken in

	mu       sync.Mutex
	workers  map[string]*worker // by namespace/name
	admitted map[types.UID]bool // the pod versions taken in
	qosReady bool               // the QoS cgroups exist
	adopted  bool               // the runtime's pods were matched against the first complete set
	applied  chan struct{}      // closed once a first set of pods was taken in
	polling  bool               // the runtime has no event stream
	runtime  string             // the runtime's name, for container IDs (containerd://…)
	wg       sync.WaitGroup
}

// New returns a manager; Run drives it.
func New(cfg Config) *Manager {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Resync == 0 {
		cfg.Resync = time.Minute
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Status == nil {
		cfg.Status = podstatus.New()
	}
	if cfg.Events == nil {
		cfg.Events = events.New(cfg.Clock, cfg.NodeName)
	}
	mem, cpu := nodeCapacity()
	m := &Manager{cfg: cfg, clock: cfg.Clock, status: cfg.Status, events: cfg.Events,
		memoryCapacity: mem, cpuCapacity: cpu, hostIPs: hostIPs(), workers: map[string]*worker{}, admitted: map[types.UID]bool{}, applied: make(chan struct{})}
	m.hugePageSizes = nodeHugePageSizes()
	m.unified, m.swapCapacity = cgroups.IsCgroup2UnifiedMode(), nodeSwap()
	m.ids = cfg.HostIDs
	if m.ids == nil {
		pods := int(cfg.Allocatable.Pods().Value())
		if pods == 0 {
			pods = 110 // kubelet's default maxPods
		}
		m.ids = userns.New(pods)
	}
	if cfg.MaxParallelImagePulls > 0 {
		m.pullSlots = make(chan struct{}, cfg.MaxParallelImagePulls)
	}
	m.prober = probe.New(probe.Config{Exec: cfg.Runtime, Clock: cfg.Clock, Log: cfg.Log,
		Notify: m.wake,
		Event: func(pod, container, reason, message string) {
			m.mu.Lock()
			w := m.workers[pod]
			m.mu.Unlock()
			if w != nil {
				m.events.Record(w.eventPod(), container, v1.EventTypeWarning, reason, message)
			}
		}})
	return m
}

// Applied is closed once the first set of pods was taken in: every pod
// the sources named then has its worker, which adopts what the runtime
// already runs of it.
func (m *Manager) Applied() <-chan struct{} { return m.applied }

// Responsive says whether the agent's bookkeeping answers before ctx
// ends: a watchdog's check that it is not wedged.
func (m *Manager) Responsive(ctx context.Context) error {
	locked := make(chan int, 1) // buffered: a late answer does not block
	go func() {
		m.mu.Lock()
		n := len(m.workers)
		m.mu.Unlock()
		locked <- n
	}()
	select {
	case <-locked:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("agent: pod bookkeeping blocked: %w", ctx.Err())
	}
}

// Status is the cache the agent publishes pod statuses to: what readers
// (the local API, reporters) list and wait on.
func (m *Manager) Status() *podstatus.Cache { return m.status }

// SetPods makes pods the desired set: new pods get a worker, pods no longer
// listed are torn down. The first complete set (every source has said what
// it wants) also takes over the pods the runtime already runs for this
// agent (after a restart) and tears down those no longer wanted; until
// then such pods are left alone. If the runtime cannot be asked yet, the
// error says so and the caller tries again.
func (m *Manager) SetPods(ctx context.Context, pods []*v1.Pod, complete bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]*v1.Pod{}
	for _, p := range pods {
		want[podstatus.Key(p.Namespace, p.Name)] = p
	}
	if !m.qosReady {
		if err := m.ensureQoSCgroups(); err != nil {
			return err
		}
		m.qosReady = true
	}
	if !m.adopted && complete {
		resp, err := m.cfg.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{
			Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelManaged: "true"}},
		})
		if err != nil {
			return err
		}
		for _, sb := range resp.GetItems() {
			md := sb.GetMetadata()
			key := podstatus.Key(md.GetNamespace(), md.GetName())
			if _, ok := want[key]; !ok && m.workers[key] == nil {
				m.cfg.Log.Info("pod no longer wanted: tearing it down", "pod", key, "uid", md.GetUid())
				m.startWorkerLocked(ctx, md.GetNamespace(), md.GetName(), nil, nil)
			}
		}
		m.adopted = true
	}
	m.forgetAdmittedLocked(want)
	refused, err := m.admitLocked(ctx, want)
	if err != nil {
		return err
	}
	for key, w := range m.workers {
		if _, ok := want[key]; !ok && w.desired() != nil {
			w.setPod(nil)
		}
	}
	for key, p := range want {
		w := m.workers[key]
		rec := refused[p.UID]
		if rec != nil {
			m.events.Record(events.Pod{Namespace: p.Namespace, Name: p.Name, UID: p.UID}, "", v1.EventTypeWarning, rec.Reason, rec.Message)
		}
		if w == nil {
			m.startWorkerLocked(ctx, p.Namespace, p.Name, p, rec)
			continue
		}
		if rec != nil {
			w.mu.Lock()
			w.evictions[p.UID] = rec
			w.mu.Unlock()
		}
		// An unchanged pod's worker is not woken by every reading of its
		// source.
		if old := w.desired(); old == nil || old.UID != p.UID || !equality.Semantic.DeepEqual(old.Spec, p.Spec) ||
			!old.DeletionTimestamp.Equal(p.DeletionTimestamp) {
			w.setPod(p)
		}
	}
	select {
	case <-m.applied:
	default:
		close(m.applied)
	}
	return nil
}

// startWorkerLocked starts pod's worker; refused, if set, is its
// refusal at admission.
func (m *Manager) startWorkerLocked(ctx context.Context, namespace, name string, pod *v1.Pod, refused *evictionRecord) {
	w := newWorker(m, namespace, name, pod)
	if refused != nil {
		w.evictions[pod.UID] = refused
	}
	m.workers[w.key] = w
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		w.run(ctx)
	}()
}

// workerDone removes a worker whose pod is gone, unless the pod was wanted
// again meanwhile.
func (m *Manager) workerDone(w *worker) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w.desired() != nil {
		return false
	}
	if m.workers[w.key] == w {
		delete(m.workers, w.key)
	}
	m.prober.Sync(w.key, nil)
	return true
}

// ProbeCollector exposes the probe counters (kubelet's
// prober_probe_total) to a Prometheus registry.
func (m *Manager) ProbeCollector() prometheus.Collector { return m.prober.Collector() }

// Events are the pods' recent events.
func (m *Manager) Events() []v1.Event { return m.events.List() }

// Run runs the prober and follows the runtime's container events, waking
// the worker of the pod each one concerns, until ctx ends; then it waits
// for the workers. Without an event stream (older runtimes) workers poll
// instead.
func (m *Manager) Run(ctx context.Context) {
	defer m.wg.Wait()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.prober.Run(ctx)
	}()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := m.clock.NewTicker(sweepInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
				m.sweepOrphans(ctx)
			}
		}
	}()
	retry := time.Second
	for ctx.Err() == nil {
		err := m.followEvents(ctx)
		if status.Code(err) == codes.Unimplemented {
			m.cfg.Log.Info("runtime has no container events: polling pods", "interval", m.cfg.PollInterval)
			m.mu.Lock()
			m.polling = true
			m.mu.Unlock()
			m.wakeAll()
			<-ctx.Done()
			return
		}
		if ctx.Err() != nil {
			return
		}
		m.cfg.Log.Warn("container event stream ended; reconnecting", "err", err)
		select {
		case <-ctx.Done():
		case <-m.clock.After(retry):
		}
		retry = min(retry*2, 30*time.Second)
	}
}

func (m *Manager) followEvents(ctx context.Context) error {
	stream, err := m.cfg.Runtime.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		return err
	}
	// Events may have been missed while disconnected.
	m.wakeAll()
	for {
		ev, err := stream.Recv()
		if err != nil {
			return err
		}
		md := ev.GetPodSandboxStatus().GetMetadata()
		m.wake(podstatus.Key(md.GetNamespace(), md.GetName()))
	}
}

// wake wakes the worker of a pod, if it has one.
func (m *Manager) wake(key string) {
	m.mu.Lock()
	w := m.workers[key]
	m.mu.Unlock()
	if w != nil {
		w.wakeup()
	}
}

func (m *Manager) wakeAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.workers {
		w.wakeup()
	}
}

// runtimeName is the runtime's name as container IDs in statuses show it.
func (m *Manager) runtimeName() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runtime == "" {
		return "cri"
	}
	return m.runtime
}

// SetRuntimeName sets the name shown in container IDs (the CRI Version's
// runtime_name: "berth", "containerd").
func (m *Manager) SetRuntimeName(name string) {
	m.mu.Lock()
	m.runtime = name
	m.mu.Unlock()
}

// resyncPeriod is how long a worker with nothing pending sleeps.
func (m *Manager) resyncPeriod() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.polling {
		return m.cfg.PollInterval
	}
	return m.cfg.Resync
}

// removeLogs deletes a removed pod's log directory, as kubelet does.
func (m *Manager) removeLogs(dir string) {
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		m.cfg.Log.Warn("remove pod logs", "dir", dir, "err", err)
	}
}
