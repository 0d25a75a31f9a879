package probe

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/berth-project/berth/test/testutil"
)

type probeRig struct {
	t       *testing.T
	clock   *testingclock.FakeClock
	exec    *fakeExec
	m       *Manager
	notify  chan string
	events  chan string
	stopped chan struct{}
}

func newRig(t *testing.T) *probeRig {
	r := &probeRig{t: t, clock: testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		exec:   &fakeExec{exit: make(chan int32), calls: make(chan *runtimeapi.ExecSyncRequest, 16)},
		notify: make(chan string, 16), events: make(chan string, 16), stopped: make(chan struct{})}
	r.m = New(Config{Exec: r.exec, Clock: r.clock,
		Notify: func(pod string) { r.notify <- pod },
		Event:  func(pod, container, reason, message string) { r.events <- reason + ": " + message }})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(r.stopped)
		r.m.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.stopped
	})
	return r
}

// answer waits for the next probe run and gives it an exit code.
func (r *probeRig) answer(code int32) {
	r.t.Helper()
	select {
	case <-r.exec.calls:
	case <-time.After(10 * time.Second):
		r.t.Fatal("no probe ran")
	}
	r.exec.exit <- code
}

func (r *probeRig) notified() {
	r.t.Helper()
	select {
	case <-r.notify:
	case <-time.After(10 * time.Second):
		r.t.Fatal("no notification")
	}
}

// settle waits until no probe is in flight: the last answer has been
// counted.
func (r *probeRig) settle() {
	r.t.Helper()
	testutil.Eventually(r.t, "no probe in flight", func() bool {
		r.m.mu.Lock()
		defer r.m.mu.Unlock()
		for _, s := range r.m.probes {
			if s.inFlight {
				return false
			}
		}
		return true
	})
}

func target(kind Kind, p *v1.Probe, started time.Time) Target {
	return Target{Pod: "ns/p", ContainerID: "c1", Container: "app", Kind: kind, Probe: p, StartedAt: started}
}

func exec(period, failures, successes int32) *v1.Probe {
	return &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"check"}}},
		PeriodSeconds: period, FailureThreshold: failures, SuccessThreshold: successes, TimeoutSeconds: 1}
}

func TestLivenessFailsAfterThresholdThenHolds(t *testing.T) {
	r := newRig(t)
	r.m.Sync("ns/p", []Target{target(Liveness, exec(10, 3, 1), r.clock.Now())})
	if got := r.m.Result("c1", Liveness); got != Success {
		t.Fatalf("initial liveness %s, want success", got)
	}
	r.answer(1)
	r.settle()
	for range 2 {
		r.clock.Step(10 * time.Second)
		r.answer(1)
	}
	r.notified()
	if got := r.m.Result("c1", Liveness); got != Failure {
		t.Fatalf("after 3 failures: %s", got)
	}
	r.settle()
	r.m.mu.Lock()
	queued := r.m.queue.Len()
	r.m.mu.Unlock()
	if queued != 0 {
		t.Errorf("a failed liveness probe is still scheduled (%d queued)", queued)
	}
	if ev := <-r.events; ev != "Unhealthy: Liveness probe failed: said 1" {
		t.Errorf("event %q", ev)
	}
	totals := r.m.Totals()
	if n := totals[Total{Pod: "ns/p", Container: "app", Kind: Liveness, Result: "failed"}]; n != 3 {
		t.Errorf("failed runs counted %d, want 3 (%v)", n, totals)
	}
	// The container is replaced: its probes go with it.
	r.m.Sync("ns/p", nil)
	if got := r.m.Result("c1", Liveness); got != Unknown {
		t.Errorf("result of a dropped probe: %s", got)
	}
}

func TestReadinessBothWays(t *testing.T) {
	r := newRig(t)
	r.m.Sync("ns/p", []Target{target(Readiness, exec(5, 1, 2), r.clock.Now())})
	if got := r.m.Result("c1", Readiness); got != Failure {
		t.Fatalf("initial readiness %s, want failure", got)
	}
	r.answer(0)
	r.settle()
	if got := r.m.Result("c1", Readiness); got != Failure {
		t.Errorf("one success of two needed: %s", got)
	}
	r.clock.Step(5 * time.Second)
	r.answer(0)
	r.notified()
	if got := r.m.Result("c1", Readiness); got != Success {
		t.Errorf("after two successes: %s", got)
	}
	r.clock.Step(5 * time.Second)
	r.answer(1)
	r.notified()
	if got := r.m.Result("c1", Readiness); got != Failure {
		t.Errorf("after a failure: %s", got)
	}
	r.clock.Step(5 * time.Second)
	r.answer(0) // readiness keeps running while it fails
	r.settle()
}

func TestStartupSucceedsOnceAndHolds(t *testing.T) {
	r := newRig(t)
	r.m.Sync("ns/p", []Target{target(Startup, exec(1, 30, 1), r.clock.Now())})
	if got := r.m.Result("c1", Startup); got != Unknown {
		t.Fatalf("initial startup %s", got)
	}
	r.answer(1)
	r.clock.Step(time.Second)
	r.answer(0)
	r.notified()
	r.settle()
	r.m.mu.Lock()
	queued := r.m.queue.Len()
	r.m.mu.Unlock()
	if got := r.m.Result("c1", Startup); got != Success || queued != 0 {
		t.Errorf("startup %s, %d queued; want success and no more runs", got, queued)
	}
	// Synced again (as every pass does), it keeps its success.
	r.m.Sync("ns/p", []Target{target(Startup, exec(1, 30, 1), r.clock.Now())})
	if got := r.m.Result("c1", Startup); got != Success {
		t.Errorf("after a resync: %s", got)
	}
}

func TestFirstRuns(t *testing.T) {
	r := newRig(t)
	start := r.clock.Now()
	p := exec(10, 3, 1)
	p.InitialDelaySeconds = 30
	r.m.Sync("ns/p", []Target{target(Liveness, p, start)})
	r.m.mu.Lock()
	next := r.m.probes[probeKey{"c1", Liveness}].next
	r.m.mu.Unlock()
	if !next.Equal(start.Add(30 * time.Second)) {
		t.Errorf("first run at %v, want after the initial delay %v", next, start.Add(30*time.Second))
	}
	// Containers that ran before the prober started (the agent restarted)
	// are spread over their period.
	seen := map[time.Time]bool{}
	for i := range 20 {
		tg := target(Readiness, exec(10, 3, 1), start.Add(-time.Hour))
		tg.ContainerID = "old" + string(rune('a'+i))
		r.m.Sync("ns/q"+string(rune('a'+i)), []Target{tg})
		r.m.mu.Lock()
		n := r.m.probes[probeKey{tg.ContainerID, Readiness}].next
		r.m.mu.Unlock()
		if n.Before(start) || !n.Before(start.Add(10*time.Second)) {
			t.Errorf("spread first run %v outside the first period", n)
		}
		seen[n] = true
	}
	if len(seen) < 2 {
		t.Error("20 restarted containers all probed at the same moment")
	}
}

func TestCollector(t *testing.T) {
	r := newRig(t)
	r.m.Sync("ns/p", []Target{target(Readiness, exec(5, 1, 1), r.clock.Now())})
	r.answer(1)
	r.settle()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.m.Collector())
	want := `# HELP prober_probe_total Cumulative number of a liveness, readiness or startup probe for a container by result.
# TYPE prober_probe_total counter
prober_probe_total{container="app",namespace="ns",pod="p",probe_type="Readiness",result="failed"} 1
`
	if err := promtestutil.GatherAndCompare(reg, strings.NewReader(want), "prober_probe_total"); err != nil {
		t.Error(err)
	}
}
