package probe

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
)

// Target is one probe of one running container.
type Target struct {
	Pod         string // namespace/name: what Notify and Event name
	PodIP       string
	ContainerID string
	Container   string
	Kind        Kind
	Probe       *v1.Probe
	Ports       []v1.ContainerPort
	StartedAt   time.Time
}

// Config is what the prober needs.
type Config struct {
	Exec execer
	// Clock is injected so that tests decide when probes are due.
	Clock clock.WithTicker
	// Notify is called, without locks held, when a result changes: the
	// pod's worker should look again. It must not block.
	Notify func(pod string)
	// Event records a failed probe (reason Unhealthy) with its output. It
	// must not block.
	Event func(pod, container, reason, message string)
	// MaxInFlight bounds the probes that run at the same time.
	MaxInFlight int
	Log         *slog.Logger
}

// Manager schedules and runs probes. Run drives it; Sync and Result may be
// called from any goroutine.
type Manager struct {
	cfg   Config
	start time.Time
	slots chan struct{}
	kick  chan struct{}

	mu     sync.Mutex
	probes map[probeKey]*state // by container and kind
	byPod  map[string]map[probeKey]bool
	queue  queue
	totals map[Total]uint64
}

type probeKey struct {
	containerID string
	kind        Kind
}

// state is one probe's schedule and counters.
type state struct {
	key      probeKey
	target   Target
	next     time.Time
	index    int // in the heap; -1 when not queued
	inFlight bool
	result   Result
	// consecutive runs with the same outcome.
	successes, failures int32
	// onHold: a liveness or startup probe that failed stops until the
	// container is replaced; a startup probe that passed is done.
	onHold bool
}

// Total counts probe runs, as kubelet's prober_probe_total does.
type Total struct {
	Pod, Container string
	Kind           Kind
	Result         string // successful, failed, unknown
}

// New returns a prober; Run drives it.
func New(cfg Config) *Manager {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 32
	}
	if cfg.Notify == nil {
		cfg.Notify = func(string) {}
	}
	if cfg.Event == nil {
		cfg.Event = func(string, string, string, string) {}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, start: cfg.Clock.Now(), slots: make(chan struct{}, cfg.MaxInFlight),
		kick: make(chan struct{}, 1), probes: map[probeKey]*state{}, byPod: map[string]map[probeKey]bool{},
		totals: map[Total]uint64{}}
}

// Sync makes targets the probes of pod: new ones are scheduled, changed
// ones rescheduled, missing ones stopped and their results forgotten.
// Idempotent; it never blocks on a running probe.
func (m *Manager) Sync(pod string, targets []Target) {
	m.mu.Lock()
	now := m.cfg.Clock.Now()
	keep := map[probeKey]bool{}
	for _, t := range targets {
		k := probeKey{t.ContainerID, t.Kind}
		keep[k] = true
		if s := m.probes[k]; s != nil {
			s.target = t // the pod IP may have come meanwhile
			continue
		}
		s := &state{key: k, target: t, index: -1, result: initial(t.Kind)}
		s.next = m.firstRun(t, now)
		m.probes[k] = s
		heap.Push(&m.queue, s)
	}
	for k := range m.byPod[pod] {
		if !keep[k] {
			if s := m.probes[k]; s != nil && s.index >= 0 {
				heap.Remove(&m.queue, s.index)
			}
			delete(m.probes, k)
		}
	}
	if len(keep) == 0 {
		delete(m.byPod, pod)
	} else {
		m.byPod[pod] = keep
	}
	m.mu.Unlock()
	m.wake()
}

// firstRun is when a new probe first runs: after its initial delay from
// the container's start. A container that was running before the prober
// started (the agent restarted) is probed at a random point of its first
// period, so that a restart does not probe every container at once.
func (m *Manager) firstRun(t Target, now time.Time) time.Time {
	at := t.StartedAt.Add(seconds(t.Probe.InitialDelaySeconds, 0))
	if t.StartedAt.Before(m.start) {
		spread := time.Duration(rand.Int64N(int64(period(t.Probe))))
		at = later(at, now.Add(spread))
	}
	return later(at, now)
}

// Result is the current result of a container's probe; Unknown for one
// the prober does not have.
func (m *Manager) Result(containerID string, kind Kind) Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.probes[probeKey{containerID, kind}]; s != nil {
		return s.result
	}
	return Unknown
}

// Totals returns the counts of probe runs so far.
func (m *Manager) Totals() map[Total]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[Total]uint64, len(m.totals))
	for k, v := range m.totals {
		out[k] = v
	}
	return out
}

func (m *Manager) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Run starts due probes until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		m.mu.Lock()
		now := m.cfg.Clock.Now()
		var due []*state
		for m.queue.Len() > 0 && !m.queue[0].next.After(now) {
			s := heap.Pop(&m.queue).(*state)
			s.inFlight = true
			due = append(due, s)
		}
		wait := time.Hour
		if m.queue.Len() > 0 {
			wait = m.queue[0].next.Sub(now)
		}
		m.mu.Unlock()
		for _, s := range due {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.runOne(ctx, s)
			}()
		}
		t := m.cfg.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-m.kick:
		case <-t.C():
		}
		t.Stop()
	}
}

// runOne runs one probe and applies kubelet's thresholds to its outcome.
func (m *Manager) runOne(ctx context.Context, s *state) {
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	m.mu.Lock()
	t := s.target
	m.mu.Unlock()
	out, err := m.handle(ctx, t)
	<-m.slots
	if ctx.Err() != nil {
		return
	}

	m.mu.Lock()
	if m.probes[s.key] != s { // stopped meanwhile
		m.mu.Unlock()
		return
	}
	s.inFlight = false
	p := t.Probe
	total := Total{Pod: t.Pod, Container: t.Container, Kind: t.Kind}
	changed := false
	switch {
	case err != nil:
		// The probe could not run at all (no pod IP yet, the runtime did
		// not answer): it decides nothing, as kubelet's "unknown".
		total.Result = "unknown"
	case out.OK:
		total.Result = "successful"
		s.failures = 0
		s.successes++
		if s.result != Success && s.successes >= threshold(p.SuccessThreshold) {
			s.result, changed = Success, true
			if t.Kind == Startup {
				s.onHold = true // done: liveness and readiness take over
			}
		}
	default:
		total.Result = "failed"
		s.successes = 0
		s.failures++
		if s.result != Failure && s.failures >= threshold(p.FailureThreshold) {
			s.result, changed = Failure, true
			if t.Kind != Readiness {
				s.onHold = true // the container is killed and replaced
			}
		}
	}
	m.totals[total]++
	if !s.onHold {
		s.next = later(s.next.Add(period(p)), m.cfg.Clock.Now())
		heap.Push(&m.queue, s)
	}
	m.mu.Unlock()

	if err != nil {
		m.cfg.Log.Debug("probe not run", "pod", t.Pod, "container", t.Container, "probe", t.Kind, "err", err)
	}
	if err == nil && !out.OK {
		m.cfg.Event(t.Pod, t.Container, "Unhealthy", fmt.Sprintf("%s probe failed: %s", t.Kind, out.Output))
	}
	if changed {
		m.cfg.Log.Info("probe result changed", "pod", t.Pod, "container", t.Container, "probe", t.Kind, "result", s.result)
		m.cfg.Notify(t.Pod)
	}
	m.wake()
}

func (m *Manager) handle(ctx context.Context, t Target) (Outcome, error) {
	p := t.Probe
	timeout := seconds(p.TimeoutSeconds, 1)
	switch {
	case p.Exec != nil:
		return Exec(ctx, m.cfg.Exec, t.ContainerID, p.Exec.Command, timeout)
	case p.HTTPGet != nil:
		return HTTPGet(ctx, p.HTTPGet, t.PodIP, t.Ports, timeout)
	case p.TCPSocket != nil:
		return TCP(ctx, p.TCPSocket, t.PodIP, t.Ports, timeout)
	case p.GRPC != nil:
		return GRPC(ctx, p.GRPC, t.PodIP, timeout)
	}
	return Outcome{}, fmt.Errorf("probe has no handler")
}

func seconds(n int32, def int32) time.Duration {
	if n <= 0 {
		n = def
	}
	return time.Duration(n) * time.Second
}

func period(p *v1.Probe) time.Duration { return seconds(p.PeriodSeconds, 10) }

func threshold(n int32) int32 {
	if n <= 0 {
		return 1
	}
	return n
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// queue is a min-heap of probes by next run.
type queue []*state

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].next.Before(q[j].next) }
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *queue) Push(x any) {
	s := x.(*state)
	s.index = len(*q)
	*q = append(*q, s)
}
func (q *queue) Pop() any {
	old := *q
	s := old[len(old)-1]
	old[len(old)-1] = nil
	s.index = -1
	*q = old[:len(old)-1]
	return s
}
