package agent

import (
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/pkg/probe"
)

// The plan's table: each case is a pod, what the runtime has of it, and
// what the prober says, at a fixed time; the case checks the actions.

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

const (
	running = runtimeapi.ContainerState_CONTAINER_RUNNING
	exited  = runtimeapi.ContainerState_CONTAINER_EXITED
	created = runtimeapi.ContainerState_CONTAINER_CREATED
)

type podOpt func(*v1.Pod)

func testPod(opts ...podOpt) *v1.Pod {
	grace := int64(30)
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-n1", Namespace: "default", UID: "u1"},
		Spec: v1.PodSpec{RestartPolicy: v1.RestartPolicyAlways, TerminationGracePeriodSeconds: &grace,
			Containers: []v1.Container{{Name: "app", Image: "busybox"}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func policy(r v1.RestartPolicy) podOpt { return func(p *v1.Pod) { p.Spec.RestartPolicy = r } }

func containers(names ...string) podOpt {
	return func(p *v1.Pod) {
		p.Spec.Containers = nil
		for _, n := range names {
			p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: n, Image: "busybox"})
		}
	}
}

func inits(names ...string) podOpt {
	return func(p *v1.Pod) {
		for _, n := range names {
			p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: n, Image: "busybox"})
		}
	}
}

func sidecars(names ...string) podOpt {
	always := v1.ContainerRestartPolicyAlways
	return func(p *v1.Pod) {
		for _, n := range names {
			p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: n, Image: "busybox", RestartPolicy: &always})
		}
	}
}

func withProbe(name string, kind probe.Kind, pr *v1.Probe) podOpt {
	return func(p *v1.Pod) {
		for _, list := range [][]v1.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for i := range list {
				if list[i].Name != name {
					continue
				}
				switch kind {
				case probe.Startup:
					list[i].StartupProbe = pr
				case probe.Liveness:
					list[i].LivenessProbe = pr
				case probe.Readiness:
					list[i].ReadinessProbe = pr
				}
			}
		}
	}
}

func execProbe() *v1.Probe {
	return &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}}
}

// world is what the runtime holds.
type world struct {
	pod *v1.Pod
	obs observation
}

func (w *world) sandbox(id string, ready bool, attempt uint32, age time.Duration) *world {
	return w.sandboxOf(w.pod.UID, id, ready, attempt, age)
}

func (w *world) sandboxOf(uid types.UID, id string, ready bool, attempt uint32, age time.Duration) *world {
	w.obs.sandboxes = append(w.obs.sandboxes, sandboxObs{id: id, uid: uid, ready: ready, attempt: attempt,
		createdAt: t0.Add(-age), ips: []string{"10.0.0.9"}})
	return w
}

// ctr adds a container instance; started and finished are relative to t0.
type ctrOpt func(*containerObs)

func exit(code int32, started, finished time.Duration) ctrOpt {
	return func(c *containerObs) {
		c.state, c.exitCode = exited, code
		c.startedAt, c.finishedAt = t0.Add(started), t0.Add(finished)
	}
}

func step(n int) ctrOpt  { return func(c *containerObs) { c.backoffStep = n } }
func order(n int) ctrOpt { return func(c *containerObs) { c.order = n } }
func stale() ctrOpt      { return func(c *containerObs) { c.hash = "old" } }
func state(s runtimeapi.ContainerState) ctrOpt {
	return func(c *containerObs) { c.state = s }
}

func (w *world) ctr(id, name, sandbox string, attempt uint32, opts ...ctrOpt) *world {
	return w.ctrOf(w.pod, id, name, sandbox, attempt, opts...)
}

func (w *world) ctrOf(pod *v1.Pod, id, name, sandbox string, attempt uint32, opts ...ctrOpt) *world {
	c := containerObs{id: id, name: name, sandboxID: sandbox, uid: pod.UID, attempt: attempt, state: running,
		createdAt: t0.Add(-time.Hour + time.Duration(len(w.obs.containers))*time.Second), startedAt: t0.Add(-time.Hour),
		grace: 30, kind: kindApp}
	for _, s := range allContainers(pod) {
		if s.Name == name {
			c.hash = containerHash(&s)
			if isSidecar(&s) {
				c.kind = kindSidecar
			} else if slices.ContainsFunc(pod.Spec.InitContainers, func(x v1.Container) bool { return x.Name == name }) {
				c.kind = kindInit
			}
		}
	}
	for _, o := range opts {
		o(&c)
	}
	// newest first, as observe sorts them
	w.obs.containers = append([]containerObs{c}, w.obs.containers...)
	return w
}

func newWorld(p *v1.Pod) *world { return &world{pod: p} }

func (w *world) input() planInput {
	return planInput{pod: w.pod, obs: w.obs, now: t0, firstSeen: t0.Add(-time.Minute)}
}

func startNames(a podActions) []string {
	var out []string
	for _, s := range a.start {
		out = append(out, s.container.Name)
	}
	return out
}

func killIDs(a podActions) [][]string {
	var out [][]string
	for _, stage := range a.kills {
		var ids []string
		for _, k := range stage {
			ids = append(ids, k.id)
		}
		out = append(out, ids)
	}
	return out
}

func TestPlanSandbox(t *testing.T) {
	t.Run("a new pod gets a sandbox and its containers", func(t *testing.T) {
		a := plan(newWorld(testPod(containers("a", "b"))).input())
		if a.createSandbox == nil || a.createSandbox.attempt != 0 || !a.createSandbox.startTime.Equal(t0.Add(-time.Minute)) {
			t.Fatalf("createSandbox %+v", a.createSandbox)
		}
		if got := startNames(a); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("starts %v", got)
		}
		if a.waiting["a"].Reason != "ContainerCreating" {
			t.Errorf("waiting %v", a.waiting)
		}
	})
	t.Run("a dead sandbox is replaced and what still runs in it stopped", func(t *testing.T) {
		w := newWorld(testPod()).sandbox("s1", false, 2, time.Hour).ctr("c1", "app", "s1", 0)
		w.obs.sandboxes[0].startTime = t0.Add(-48 * time.Hour)
		a := plan(w.input())
		if a.createSandbox == nil || a.createSandbox.attempt != 3 || !a.createSandbox.startTime.Equal(t0.Add(-48*time.Hour)) {
			t.Fatalf("createSandbox %+v, want attempt 3 keeping the pod's start time", a.createSandbox)
		}
		if got := killIDs(a); len(got) != 1 || got[0][0] != "c1" {
			t.Errorf("kills %v", got)
		}
		if got := startNames(a); !slices.Equal(got, []string{"app"}) || a.start[0].attempt != 1 {
			t.Errorf("starts %v", a.start)
		}
	})
	t.Run("only the newest sandbox runs", func(t *testing.T) {
		w := newWorld(testPod()).sandbox("new", true, 1, time.Minute).sandbox("old", true, 0, time.Hour).
			ctr("c-old", "app", "old", 0).ctr("c-new", "app", "new", 1)
		a := plan(w.input())
		if !slices.Equal(a.stopSandboxes, []string{"old"}) || len(a.kills) != 1 || a.kills[0][0].id != "c-old" {
			t.Errorf("stop %v kills %v", a.stopSandboxes, killIDs(a))
		}
		if len(a.start) != 0 || a.createSandbox != nil {
			t.Errorf("starts %v create %v", startNames(a), a.createSandbox)
		}
	})
	t.Run("a finished Never pod is not recreated when its sandbox dies", func(t *testing.T) {
		w := newWorld(testPod(policy(v1.RestartPolicyNever))).sandbox("s1", false, 0, time.Hour).ctr("c1", "app", "s1", 0, exit(3, -time.Hour, -time.Minute))
		a := plan(w.input())
		if a.createSandbox != nil || !a.finished || a.sandboxID != "s1" {
			t.Errorf("create %v finished %v sandbox %q", a.createSandbox, a.finished, a.sandboxID)
		}
	})
	t.Run("an OnFailure pod whose container failed is recreated", func(t *testing.T) {
		w := newWorld(testPod(policy(v1.RestartPolicyOnFailure))).sandbox("s1", false, 0, time.Hour).ctr("c1", "app", "s1", 0, exit(1, -time.Hour, -time.Minute))
		if a := plan(w.input()); a.createSandbox == nil || a.finished {
			t.Errorf("create %v finished %v", a.createSandbox, a.finished)
		}
	})
}

func TestPlanRestarts(t *testing.T) {
	tests := []struct {
		name    string
		pod     *v1.Pod
		opts    []ctrOpt
		start   bool
		waiting string
		requeue time.Duration
		step    int
	}{
		{"a first quick failure restarts at once", testPod(), []ctrOpt{exit(1, -2*time.Second, -time.Second)}, true, "ContainerCreating", 0, 1},
		{"a second quick failure waits 10 s", testPod(), []ctrOpt{exit(1, -2*time.Second, -time.Second), step(1)}, false, "CrashLoopBackOff", 9 * time.Second, 0},
		{"the wait over, it restarts", testPod(), []ctrOpt{exit(1, -20*time.Second, -11*time.Second), step(1)}, true, "ContainerCreating", 0, 2},
		{"the back-off doubles", testPod(), []ctrOpt{exit(1, -20*time.Second, -11*time.Second), step(2)}, false, "CrashLoopBackOff", 9 * time.Second, 0},
		{"ten minutes of running start a new series", testPod(), []ctrOpt{exit(1, -11*time.Minute, -time.Second), step(5)}, true, "ContainerCreating", 0, 1},
		{"it never started: back-off from its creation", testPod(), []ctrOpt{exit(128, 0, 0), step(1), func(c *containerObs) {
			c.startedAt, c.finishedAt, c.createdAt = time.Time{}, time.Time{}, t0.Add(-time.Second)
		}}, false, "CrashLoopBackOff", 9 * time.Second, 0},
		{"OnFailure restarts a failure", testPod(policy(v1.RestartPolicyOnFailure)), []ctrOpt{exit(1, -time.Hour, -time.Minute)}, true, "ContainerCreating", 0, 1},
		{"OnFailure leaves a success", testPod(policy(v1.RestartPolicyOnFailure)), []ctrOpt{exit(0, -time.Hour, -time.Minute)}, false, "", 0, 0},
		{"Never leaves a failure", testPod(policy(v1.RestartPolicyNever)), []ctrOpt{exit(1, -time.Hour, -time.Minute)}, false, "", 0, 0},
		{"a changed spec restarts at once, whatever the policy", testPod(policy(v1.RestartPolicyNever)), []ctrOpt{exit(137, -time.Hour, -time.Second), step(4), stale()}, true, "ContainerCreating", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(tt.pod).sandbox("s1", true, 0, time.Hour).ctr("c1", "app", "s1", 3, tt.opts...)
			a := plan(w.input())
			if got := len(a.start) == 1; got != tt.start {
				t.Fatalf("start %v, want %v (waiting %v)", startNames(a), tt.start, a.waiting)
			}
			if tt.start && (a.start[0].attempt != 4 || a.start[0].step != tt.step) {
				t.Errorf("attempt %d step %d, want 4 and %d", a.start[0].attempt, a.start[0].step, tt.step)
			}
			if got := a.waiting["app"].Reason; got != tt.waiting {
				t.Errorf("waiting %q, want %q", got, tt.waiting)
			}
			if a.requeue != tt.requeue {
				t.Errorf("requeue %v, want %v", a.requeue, tt.requeue)
			}
		})
	}
}

func TestPlanCompletion(t *testing.T) {
	t.Run("a pod whose containers are done stops its sandbox", func(t *testing.T) {
		w := newWorld(testPod(policy(v1.RestartPolicyOnFailure), containers("a", "b"))).sandbox("s1", true, 0, time.Hour).
			ctr("ca", "a", "s1", 0, exit(0, -time.Hour, -time.Minute)).ctr("cb", "b", "s1", 0, exit(0, -time.Hour, -time.Second))
		a := plan(w.input())
		if !a.finished || !slices.Equal(a.stopSandboxes, []string{"s1"}) || len(a.start) != 0 {
			t.Errorf("finished %v stop %v start %v", a.finished, a.stopSandboxes, startNames(a))
		}
	})
	t.Run("an Always pod never completes", func(t *testing.T) {
		w := newWorld(testPod()).sandbox("s1", true, 0, time.Hour).ctr("c1", "app", "s1", 0, exit(0, -time.Hour, -time.Minute))
		if a := plan(w.input()); a.finished || len(a.start) != 1 {
			t.Errorf("finished %v start %v", a.finished, startNames(a))
		}
	})
	t.Run("one container still running keeps the pod going", func(t *testing.T) {
		w := newWorld(testPod(policy(v1.RestartPolicyNever), containers("a", "b"))).sandbox("s1", true, 0, time.Hour).
			ctr("ca", "a", "s1", 0, exit(3, -time.Hour, -time.Minute)).ctr("cb", "b", "s1", 0)
		if a := plan(w.input()); a.finished || len(a.stopSandboxes) != 0 {
			t.Errorf("finished %v stop %v", a.finished, a.stopSandboxes)
		}
	})
}

func TestPlanInitContainers(t *testing.T) {
	pod := func(p v1.RestartPolicy) *v1.Pod { return testPod(policy(p), inits("i1", "i2")) }
	tests := []struct {
		name     string
		world    func(*world) *world
		policy   v1.RestartPolicy
		starts   []string
		initDone bool
		finished bool
	}{
		{"the first init container starts alone", func(w *world) *world { return w }, v1.RestartPolicyAlways, []string{"i1"}, false, false},
		{"one runs: nothing else starts", func(w *world) *world { return w.ctr("c1", "i1", "s1", 0) }, v1.RestartPolicyAlways, nil, false, false},
		{"one succeeded: the next starts", func(w *world) *world {
			return w.ctr("c1", "i1", "s1", 0, exit(0, -time.Minute, -time.Second))
		}, v1.RestartPolicyAlways, []string{"i2"}, false, false},
		{"all succeeded: the app starts", func(w *world) *world {
			return w.ctr("c1", "i1", "s1", 0, exit(0, -time.Minute, -time.Second)).ctr("c2", "i2", "s1", 0, exit(0, -time.Minute, -time.Second))
		}, v1.RestartPolicyAlways, []string{"app"}, true, false},
		{"a failed one is retried", func(w *world) *world {
			return w.ctr("c1", "i1", "s1", 0, exit(1, -time.Minute, -time.Second))
		}, v1.RestartPolicyOnFailure, []string{"i1"}, false, false},
		{"with Never a failed one fails the pod", func(w *world) *world {
			return w.ctr("c1", "i1", "s1", 0, exit(1, -time.Minute, -time.Second))
		}, v1.RestartPolicyNever, nil, false, true},
		{"once the app ran, init containers are not run again", func(w *world) *world {
			return w.ctr("c1", "i1", "s1", 0, exit(0, -time.Minute, -time.Second)).ctr("c2", "app", "s1", 0)
		}, v1.RestartPolicyAlways, nil, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.world(newWorld(pod(tt.policy)).sandbox("s1", true, 0, time.Hour))
			a := plan(w.input())
			if got := startNames(a); !slices.Equal(got, tt.starts) {
				t.Errorf("starts %v, want %v", got, tt.starts)
			}
			if a.initDone != tt.initDone || a.finished != tt.finished {
				t.Errorf("initDone %v finished %v, want %v %v", a.initDone, a.finished, tt.initDone, tt.finished)
			}
			if tt.finished && !slices.Equal(a.stopSandboxes, []string{"s1"}) {
				t.Errorf("a failed pod keeps its sandbox: stop %v", a.stopSandboxes)
			}
		})
	}
}

func TestPlanSidecars(t *testing.T) {
	pod := func(opts ...podOpt) *v1.Pod {
		return testPod(append([]podOpt{policy(v1.RestartPolicyNever), sidecars("log", "proxy"), containers("app")}, opts...)...)
	}
	t.Run("sidecars start in order before the app", func(t *testing.T) {
		w := newWorld(pod()).sandbox("s1", true, 0, time.Hour)
		if got := startNames(plan(w.input())); !slices.Equal(got, []string{"log"}) {
			t.Errorf("starts %v", got)
		}
		w.ctr("c1", "log", "s1", 0)
		if got := startNames(plan(w.input())); !slices.Equal(got, []string{"proxy"}) {
			t.Errorf("with log running: starts %v", got)
		}
		w.ctr("c2", "proxy", "s1", 0)
		if a := plan(w.input()); !slices.Equal(startNames(a), []string{"app"}) || !a.initDone {
			t.Errorf("with both running: starts %v initDone %v", startNames(a), a.initDone)
		}
	})
	t.Run("a sidecar with a startup probe counts once it passed", func(t *testing.T) {
		w := newWorld(pod(withProbe("log", probe.Startup, execProbe()))).sandbox("s1", true, 0, time.Hour).ctr("c1", "log", "s1", 0)
		a := plan(w.input())
		if len(a.start) != 0 || len(a.probes) != 1 || a.probes[0].kind != probe.Startup {
			t.Errorf("startup unknown: starts %v probes %v", startNames(a), a.probes)
		}
		in := w.input()
		in.health = map[string]containerHealth{"c1": {startup: probe.Success}}
		if got := startNames(plan(in)); !slices.Equal(got, []string{"proxy"}) {
			t.Errorf("startup passed: starts %v", got)
		}
	})
	t.Run("a sidecar that exits is restarted, the app untouched", func(t *testing.T) {
		w := newWorld(pod()).sandbox("s1", true, 0, time.Hour).
			ctr("c1", "log", "s1", 0).ctr("c2", "proxy", "s1", 0).ctr("c3", "app", "s1", 0).
			ctr("c4", "proxy", "s1", 1, exit(1, -time.Hour, -time.Second))
		a := plan(w.input())
		if got := startNames(a); !slices.Equal(got, []string{"proxy"}) || len(a.kills) != 0 {
			t.Errorf("starts %v kills %v", got, killIDs(a))
		}
	})
	t.Run("once the app is done, sidecars stop last first and the pod completes", func(t *testing.T) {
		w := newWorld(pod()).sandbox("s1", true, 0, time.Hour).
			ctr("c1", "log", "s1", 0, order(0)).ctr("c2", "proxy", "s1", 0, order(1)).ctr("c3", "app", "s1", 0, exit(0, -time.Hour, -time.Second))
		a := plan(w.input())
		if got := killIDs(a); len(got) != 2 || got[0][0] != "c2" || got[1][0] != "c1" {
			t.Errorf("kills %v, want proxy then log", got)
		}
		if !a.finished || !slices.Equal(a.stopSandboxes, []string{"s1"}) || len(a.start) != 0 {
			t.Errorf("finished %v stop %v starts %v", a.finished, a.stopSandboxes, startNames(a))
		}
	})
}

func TestPlanProbes(t *testing.T) {
	grace := int64(5)
	liveness := execProbe()
	liveness.TerminationGracePeriodSeconds = &grace
	pod := testPod(withProbe("app", probe.Startup, execProbe()), withProbe("app", probe.Liveness, liveness), withProbe("app", probe.Readiness, execProbe()))
	base := func() *world { return newWorld(pod).sandbox("s1", true, 0, time.Hour).ctr("c1", "app", "s1", 0) }
	kinds := func(a podActions) []probe.Kind {
		var out []probe.Kind
		for _, p := range a.probes {
			out = append(out, p.kind)
		}
		return out
	}
	tests := []struct {
		name   string
		health containerHealth
		probes []probe.Kind
		kill   string // message
		grace  int64
	}{
		{"until the startup probe passes, only it runs", containerHealth{}, []probe.Kind{probe.Startup}, "", 0},
		{"then liveness and readiness too", containerHealth{startup: probe.Success, liveness: probe.Success}, []probe.Kind{probe.Startup, probe.Liveness, probe.Readiness}, "", 0},
		{"a failed startup probe kills with the pod's grace", containerHealth{startup: probe.Failure}, nil, "failed startup probe", 30},
		{"a failed liveness probe kills with the probe's grace", containerHealth{startup: probe.Success, liveness: probe.Failure}, nil, "failed liveness probe", 5},
		{"a failed readiness probe kills nothing", containerHealth{startup: probe.Success, liveness: probe.Success, readiness: probe.Failure}, []probe.Kind{probe.Startup, probe.Liveness, probe.Readiness}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base().input()
			in.health = map[string]containerHealth{"c1": tt.health}
			a := plan(in)
			if got := kinds(a); !slices.Equal(got, tt.probes) {
				t.Errorf("probes %v, want %v", got, tt.probes)
			}
			if tt.kill == "" {
				if len(a.kills) != 0 {
					t.Errorf("kills %v", killIDs(a))
				}
				return
			}
			if len(a.kills) != 1 || !strings.Contains(a.kills[0][0].message, tt.kill) || a.kills[0][0].grace != tt.grace || a.kills[0][0].reason != reasonUnhealthy {
				t.Errorf("kills %+v, want one saying %q with grace %d", a.kills, tt.kill, tt.grace)
			}
		})
	}
	t.Run("a killed container restarts under the pod's policy", func(t *testing.T) {
		w := newWorld(pod).sandbox("s1", true, 0, time.Hour).ctr("c1", "app", "s1", 0, exit(137, -time.Hour, -time.Second))
		if a := plan(w.input()); len(a.start) != 1 {
			t.Errorf("starts %v", startNames(a))
		}
	})
}

func TestPlanTeardown(t *testing.T) {
	pod := testPod(sidecars("log", "proxy"), containers("a", "b"))
	w := newWorld(pod).sandbox("s1", true, 0, time.Hour).
		ctr("c1", "log", "s1", 0, order(0)).ctr("c2", "proxy", "s1", 0, order(1)).
		ctr("c3", "a", "s1", 0, order(2)).ctr("c4", "b", "s1", 0, order(3), func(c *containerObs) { c.preStop = `{"sleep":{"seconds":1}}` }).
		ctr("c0", "a", "s1", 0, exit(1, -2*time.Hour, -time.Hour))
	in := w.input()
	in.pod = nil
	in.termStart = map[types.UID]time.Time{"u1": t0.Add(-10 * time.Second)}
	a := plan(in)
	got := killIDs(a)
	if len(got) != 3 || !slices.Equal(got[0], []string{"c4", "c3"}) && !slices.Equal(got[0], []string{"c3", "c4"}) || got[1][0] != "c2" || got[2][0] != "c1" {
		t.Fatalf("kills %v, want the apps together, then proxy, then log", got)
	}
	for _, stage := range a.kills {
		for _, k := range stage {
			if k.grace != 20 {
				t.Errorf("%s: grace %d, want the 20 s left of 30", k.id, k.grace)
			}
			if (k.id == "c4") != (k.preStop != "") {
				t.Errorf("%s: preStop %q", k.id, k.preStop)
			}
		}
	}
	if !slices.Equal(a.stopSandboxes, []string{"s1"}) || !slices.Equal(a.removeSandboxes, []string{"s1"}) || len(a.removeContainers) != 5 ||
		!slices.Equal(a.cleanup, []types.UID{"u1"}) || a.gone {
		t.Errorf("stop %v remove %v/%v cleanup %v gone %v", a.stopSandboxes, a.removeContainers, a.removeSandboxes, a.cleanup, a.gone)
	}
	in.now = t0.Add(time.Minute)
	for _, stage := range plan(in).kills {
		if stage[0].grace != 0 {
			t.Errorf("past the deadline: grace %d", stage[0].grace)
		}
	}
	if a := plan(planInput{now: t0}); !a.gone {
		t.Error("nothing left and nothing wanted: not gone")
	}
}

func TestPlanDeletedUpstream(t *testing.T) {
	five := int64(5)
	ts := metav1.NewTime(t0)
	pod := testPod(func(p *v1.Pod) { p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &five })
	w := newWorld(pod).sandbox("s1", true, 0, time.Hour).ctr("c1", "app", "s1", 0)
	in := w.input()
	in.termStart = map[types.UID]time.Time{"u1": t0.Add(-2 * time.Second)}
	a := plan(in)
	if got := killIDs(a); len(got) != 1 || got[0][0] != "c1" || a.kills[0][0].grace != 3 {
		t.Errorf("kills %v (grace %v), want c1 within the 3 s left of the deletion's 5", got, a.kills)
	}
	if len(a.start) != 0 || a.createSandbox != nil || !slices.Equal(a.cleanup, []types.UID{"u1"}) || a.gone {
		t.Errorf("start %v create %v cleanup %v gone %v", startNames(a), a.createSandbox, a.cleanup, a.gone)
	}
	// Nothing left: cleaned up (the Terminated callback), nothing started.
	in = newWorld(pod).input()
	if a := plan(in); len(a.start) != 0 || a.createSandbox != nil || !slices.Equal(a.cleanup, []types.UID{"u1"}) {
		t.Errorf("after the teardown: start %v create %v cleanup %v", startNames(a), a.createSandbox, a.cleanup)
	}
}

func TestPlanReplacementWaitsForThePreviousVersion(t *testing.T) {
	oldPod := testPod()
	newPod := testPod(func(p *v1.Pod) { p.UID = "u2" })
	w := newWorld(newPod).sandboxOf("u1", "s1", true, 0, time.Hour).ctrOf(oldPod, "c1", "app", "s1", 0)
	a := plan(w.input())
	if !slices.Equal(a.tearing, []types.UID{"u1"}) || len(a.kills) != 1 || a.createSandbox != nil || len(a.start) != 0 {
		t.Errorf("tearing %v kills %v create %v start %v", a.tearing, killIDs(a), a.createSandbox, startNames(a))
	}
	if a.waiting["app"].Reason != "ContainerCreating" {
		t.Errorf("the new version waits: %v", a.waiting)
	}
}

func TestPlanImageAndStartBackOff(t *testing.T) {
	w := newWorld(testPod())
	in := w.input()
	in.pulls = map[string]pullFailure{"busybox": {failures: 2, last: t0.Add(-5 * time.Second), err: "not found"}}
	a := plan(in)
	if len(a.start) != 0 || a.waiting["app"].Reason != "ImagePullBackOff" || a.requeue != 15*time.Second {
		t.Errorf("pull back-off: start %v waiting %v requeue %v", startNames(a), a.waiting, a.requeue)
	}
	in.now = t0.Add(20 * time.Second)
	if a := plan(in); len(a.start) != 1 {
		t.Errorf("after the pull back-off: start %v", startNames(a))
	}
	in = w.input()
	in.startErrs = map[string]startFailure{"app": {at: t0.Add(-time.Second), reason: "CreateContainerError", message: "boom"}}
	if a := plan(in); len(a.start) != 0 || a.waiting["app"].Reason != "CreateContainerError" {
		t.Errorf("start error: start %v waiting %v", startNames(a), a.waiting)
	}
}

func TestPlanGarbageCollection(t *testing.T) {
	w := newWorld(testPod()).sandbox("s2", true, 1, time.Minute).sandbox("s1", false, 0, time.Hour).sandbox("s0", false, 0, 2*time.Hour).
		ctr("c0", "app", "s0", 0, exit(1, -3*time.Hour, -2*time.Hour)).
		ctr("c1", "app", "s1", 1, exit(1, -time.Hour, -time.Hour)).
		ctr("c2", "app", "s2", 2, exit(1, -time.Minute, -time.Second)).
		ctr("c3", "app", "s2", 3)
	a := plan(w.input())
	if !slices.Equal(a.removeContainers, []string{"c1", "c0"}) {
		t.Errorf("remove containers %v, want all but the newest two", a.removeContainers)
	}
	if !slices.Equal(a.removeSandboxes, []string{"s1", "s0"}) {
		t.Errorf("remove sandboxes %v", a.removeSandboxes)
	}
	w = newWorld(testPod()).sandbox("s1", true, 0, time.Hour).ctr("c1", "app", "s1", 0, state(created))
	if a := plan(w.input()); !slices.Equal(a.removeContainers, []string{"c1"}) || len(a.start) != 1 || a.start[0].attempt != 1 {
		t.Errorf("created but never started: remove %v start %+v, want c1 removed and attempt 1 started", a.removeContainers, a.start)
	}
}

func TestPlanEvicted(t *testing.T) {
	pod := testPod(sidecars("log"), containers("a", "b"))
	w := newWorld(pod).sandbox("s1", true, 0, time.Hour).
		ctr("c1", "log", "s1", 0, order(0)).ctr("c2", "a", "s1", 0, order(1)).ctr("c3", "b", "s1", 0, order(2), exit(1, -time.Hour, -time.Minute))
	in := w.input()
	in.evicted = &evictionRecord{Reason: reasonEvicted, Message: "The node was low on resource: memory.", Grace: 1, At: t0}
	a := plan(in)
	if got := killIDs(a); len(got) != 2 || !slices.Equal(got[0], []string{"c2"}) || !slices.Equal(got[1], []string{"c1"}) {
		t.Errorf("kills %v, want the running app, then the sidecar", got)
	}
	for _, stage := range a.kills {
		if stage[0].grace != 1 {
			t.Errorf("%s: grace %d, want the eviction's 1 s, not the pod's 30", stage[0].id, stage[0].grace)
		}
	}
	if !slices.Equal(a.stopSandboxes, []string{"s1"}) || len(a.start) != 0 || a.createSandbox != nil || !a.finished || !a.evicted || a.releaseVolumes ||
		len(a.cleanup) != 0 || len(a.removeSandboxes) != 0 {
		t.Errorf("stop %v start %v create %v finished %v evicted %v release %v cleanup %v remove %v",
			a.stopSandboxes, startNames(a), a.createSandbox, a.finished, a.evicted, a.releaseVolumes, a.cleanup, a.removeSandboxes)
	}
	// Once all of it stopped: nothing restarts (restartPolicy Always
	// notwithstanding) and the volumes go.
	w = newWorld(pod).sandbox("s1", false, 0, time.Hour).
		ctr("c1", "log", "s1", 0, order(0), exit(137, -time.Hour, 0)).ctr("c2", "a", "s1", 0, order(1), exit(137, -time.Hour, 0)).
		ctr("c3", "b", "s1", 0, order(2), exit(1, -time.Hour, -time.Minute))
	in = w.input()
	in.evicted = &evictionRecord{Reason: reasonEvicted, Grace: 1, At: t0.Add(-time.Hour)}
	a = plan(in)
	if len(a.kills) != 0 || len(a.start) != 0 || a.createSandbox != nil || !a.releaseVolumes || a.sandboxID != "s1" || len(a.removeSandboxes) != 0 {
		t.Errorf("stopped: kills %v start %v create %v release %v sandbox %q remove %v",
			killIDs(a), startNames(a), a.createSandbox, a.releaseVolumes, a.sandboxID, a.removeSandboxes)
	}
	st := podStatus(in, a, statusFacts{})
	if st.Phase != v1.PodFailed || st.Reason != "Evicted" {
		t.Errorf("phase %s reason %q, want Failed, Evicted", st.Phase, st.Reason)
	}
	var disruption *v1.PodCondition
	for i := range st.Conditions {
		if st.Conditions[i].Type == v1.DisruptionTarget {
			disruption = &st.Conditions[i]
		}
		if st.Conditions[i].Type == v1.PodReady && st.Conditions[i].Status != v1.ConditionFalse {
			t.Error("an evicted pod is Ready")
		}
	}
	if disruption == nil || disruption.Status != v1.ConditionTrue || disruption.Reason != "TerminationByKubelet" {
		t.Errorf("DisruptionTarget condition %+v", disruption)
	}
}
