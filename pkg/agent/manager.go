package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Config is what the agent needs.
type Config struct {
	NodeName string
	// LogDir holds the pods' container logs, as kubelet's /var/log/pods.
	LogDir string
	// PodDir holds the pods' volumes: <PodDir>/<uid>/volumes/...
	PodDir string
	// ResolvConf is the node's resolver configuration.
	ResolvConf string
	// CgroupRoot is the parent of the QoS hierarchy ("kubepods"), in the
	// runtime's cgroup driver's syntax; "" puts pods where the runtime
	// puts them by default.
	CgroupRoot string
	// SystemdCgroups names the pod cgroups as slices (kubepods-burstable-
	// pod<uid>.slice) for a runtime using the systemd cgroup driver.
	SystemdCgroups bool
	Runtime        runtimeService
	Images         imageService
	Log            *slog.Logger
	// Resync is the safety-net relist period of each pod; runtime events
	// wake a pod's worker at once. Runtimes without events are relisted
	// every PollInterval.
	Resync, PollInterval time.Duration
}

// Manager runs one worker per pod.
type Manager struct {
	cfg            Config
	memoryCapacity int64
	cpuCapacity    int64 // millicores
	hostIPs        []string

	mu      sync.Mutex
	workers map[types.UID]*worker
	adopted bool      // the runtime's pods were matched against the first desired set
	polling bool      // the runtime has no event stream
	desired []*v1.Pod // the latest SetPods, for retrying the first one
	runtime string    // the runtime's name, for container IDs (containerd://…)
	wg      sync.WaitGroup
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
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	mem, cpu := nodeCapacity()
	return &Manager{cfg: cfg, memoryCapacity: mem, cpuCapacity: cpu, hostIPs: hostIPs(),
		workers: map[types.UID]*worker{}}
}

// SetPods makes pods the desired set: new pods get a worker, pods no longer
// listed are torn down. The first call also takes over the pods the
// runtime already runs for this agent (after a restart) and tears down
// those no longer wanted; if the runtime cannot be asked yet, Run tries
// again.
func (m *Manager) SetPods(ctx context.Context, pods []*v1.Pod) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.desired = pods
	want := map[types.UID]*v1.Pod{}
	for _, p := range pods {
		want[p.UID] = p
	}
	if !m.adopted {
		if err := m.ensureQoSCgroups(); err != nil {
			return err
		}
		resp, err := m.cfg.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{
			Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelManaged: "true"}},
		})
		if err != nil {
			return err
		}
		for _, sb := range resp.GetItems() {
			uid := types.UID(sb.GetMetadata().GetUid())
			if _, ok := want[uid]; !ok && m.workers[uid] == nil {
				m.cfg.Log.Info("pod no longer wanted: tearing it down", "pod", sb.GetMetadata().GetNamespace()+"/"+sb.GetMetadata().GetName(), "uid", uid)
				m.startWorkerLocked(ctx, uid, nil)
			}
		}
		m.adopted = true
	}
	for uid, w := range m.workers {
		if _, ok := want[uid]; !ok {
			w.setPod(nil)
		}
	}
	for uid, p := range want {
		// A pod's UID is a hash of its content: a known UID is an unchanged
		// pod, whose worker needs no wake-up unless it was going away.
		if w := m.workers[uid]; w != nil {
			if w.desired() == nil {
				w.setPod(p)
			}
		} else {
			m.startWorkerLocked(ctx, uid, p)
		}
	}
	return nil
}

func (m *Manager) startWorkerLocked(ctx context.Context, uid types.UID, pod *v1.Pod) {
	w := newWorker(m, uid, pod)
	m.workers[uid] = w
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		w.run(ctx)
	}()
}

// workerDone removes a worker that finished tearing its pod down, unless
// the pod was wanted again meanwhile.
func (m *Manager) workerDone(w *worker) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w.desired() != nil {
		return false
	}
	if m.workers[w.uid] == w {
		delete(m.workers, w.uid)
	}
	return true
}

// Pods is every pod the agent runs, with its status, sorted by namespace
// and name.
func (m *Manager) Pods() []v1.Pod {
	m.mu.Lock()
	ws := make([]*worker, 0, len(m.workers))
	for _, w := range m.workers {
		ws = append(ws, w)
	}
	m.mu.Unlock()
	var out []v1.Pod
	for _, w := range ws {
		if p, ok := w.snapshot(); ok {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Run follows the runtime's container events, waking the worker of the
// pod each one concerns, until ctx ends; then it waits for the workers.
// Without an event stream (older runtimes) workers poll instead.
func (m *Manager) Run(ctx context.Context) {
	defer m.wg.Wait()
	retry := time.Second
	for ctx.Err() == nil {
		err := m.followEvents(ctx)
		if status.Code(err) == codes.Unimplemented {
			m.cfg.Log.Info("runtime has no container events: polling pods", "interval", m.cfg.PollInterval)
			m.mu.Lock()
			m.polling = true
			for _, w := range m.workers {
				w.wakeup()
			}
			m.mu.Unlock()
			<-ctx.Done()
			return
		}
		if ctx.Err() != nil {
			return
		}
		m.cfg.Log.Warn("container event stream ended; reconnecting", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(retry):
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
		uid := types.UID(ev.GetPodSandboxStatus().GetMetadata().GetUid())
		m.mu.Lock()
		w := m.workers[uid]
		m.mu.Unlock()
		if w != nil {
			w.wakeup()
		}
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
