package agent

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-project/berth/pkg/probe"
)

func statusOf(in planInput) v1.PodStatus {
	return podStatus(in, plan(in), statusFacts{runtime: "berth", hostIPs: []string{"192.0.2.1"}})
}

func condition(st v1.PodStatus, t v1.PodConditionType) v1.PodCondition {
	for _, c := range st.Conditions {
		if c.Type == t {
			return c
		}
	}
	return v1.PodCondition{}
}

func TestStatusPhases(t *testing.T) {
	tests := []struct {
		name  string
		world *world
		phase v1.PodPhase
	}{
		{"being created", newWorld(testPod()), v1.PodPending},
		{"running", newWorld(testPod()).sandbox("s1", true, 0, time.Hour).ctr("c1", "app", "s1", 0), v1.PodRunning},
		{"in back-off, Always", newWorld(testPod()).sandbox("s1", true, 0, time.Hour).ctr("c1", "app", "s1", 0, exit(1, -2*time.Second, -time.Second), step(3)), v1.PodRunning},
		{"succeeded", newWorld(testPod(policy(v1.RestartPolicyOnFailure))).sandbox("s1", true, 0, time.Hour).ctr("c1", "app", "s1", 0, exit(0, -time.Hour, -time.Second)), v1.PodSucceeded},
		{"failed, Never", newWorld(testPod(policy(v1.RestartPolicyNever))).sandbox("s1", true, 0, time.Hour).ctr("c1", "app", "s1", 0, exit(2, -time.Hour, -time.Second)), v1.PodFailed},
		{"failed in init, Never", newWorld(testPod(policy(v1.RestartPolicyNever), inits("i"))).sandbox("s1", true, 0, time.Hour).ctr("c1", "i", "s1", 0, exit(2, -time.Hour, -time.Second)), v1.PodFailed},
		{"initialising", newWorld(testPod(inits("i"))).sandbox("s1", true, 0, time.Hour).ctr("c1", "i", "s1", 0), v1.PodPending},
		{"finished, sandbox gone", newWorld(testPod(policy(v1.RestartPolicyNever))).sandbox("s1", false, 0, time.Hour).ctr("c1", "app", "s1", 0, exit(0, -time.Hour, -time.Second)), v1.PodSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusOf(tt.world.input()).Phase; got != tt.phase {
				t.Errorf("phase %s, want %s", got, tt.phase)
			}
		})
	}
}

func TestStatusCrashLoopShowsTheNewestExit(t *testing.T) {
	w := newWorld(testPod()).sandbox("s1", true, 0, time.Hour).
		ctr("c1", "app", "s1", 1, exit(1, -time.Minute, -50*time.Second)).
		ctr("c2", "app", "s1", 2, exit(2, -3*time.Second, -2*time.Second), step(2))
	w.obs.containers[0].imageRef = "sha256:abc"
	st := statusOf(w.input())
	c := st.ContainerStatuses[0]
	if c.State.Waiting == nil || c.State.Waiting.Reason != "CrashLoopBackOff" {
		t.Fatalf("state %+v", c.State)
	}
	if lt := c.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 2 || lt.ContainerID != "berth://c2" {
		t.Errorf("last state %+v, want the newest exit (2, c2)", c.LastTerminationState)
	}
	if c.ContainerID != "berth://c2" || c.ImageID != "sha256:abc" || c.RestartCount != 2 {
		t.Errorf("waiting container: id %q image %q restarts %d", c.ContainerID, c.ImageID, c.RestartCount)
	}
	if c.Started == nil || *c.Started || c.Ready {
		t.Errorf("started %v ready %v", c.Started, c.Ready)
	}
}

func TestStatusReadiness(t *testing.T) {
	pod := testPod(withProbe("app", probe.Readiness, execProbe()), sidecars("log"))
	w := newWorld(pod).sandbox("s1", true, 0, time.Hour).ctr("c0", "log", "s1", 0).ctr("c1", "app", "s1", 0)
	in := w.input()
	st := statusOf(in)
	if c := condition(st, v1.PodReady); c.Status != v1.ConditionFalse || c.Message != "containers with unready status: [app]" {
		t.Errorf("before the probe passed: Ready %+v", c)
	}
	if st.ContainerStatuses[0].Ready || !*st.ContainerStatuses[0].Started {
		t.Errorf("container %+v", st.ContainerStatuses[0])
	}
	in.health = map[string]containerHealth{"c1": {readiness: probe.Success}}
	in.now = t0.Add(time.Minute)
	ready := podStatus(in, plan(in), statusFacts{runtime: "berth", previous: st})
	for _, typ := range []v1.PodConditionType{v1.PodReady, v1.ContainersReady, v1.PodInitialized, v1.PodReadyToStartContainers, v1.PodScheduled} {
		if c := condition(ready, typ); c.Status != v1.ConditionTrue {
			t.Errorf("%s %+v", typ, c)
		}
	}
	if c := condition(ready, v1.PodReady); !c.LastTransitionTime.Equal(&metav1.Time{Time: t0.Add(time.Minute)}) {
		t.Errorf("Ready changed at %v, want %v", c.LastTransitionTime, t0.Add(time.Minute))
	}
	if c := condition(ready, v1.PodScheduled); !c.LastTransitionTime.Equal(&metav1.Time{Time: t0}) {
		t.Errorf("PodScheduled kept its transition time? %v", c.LastTransitionTime)
	}
	in.health = map[string]containerHealth{"c1": {readiness: probe.Failure}}
	if c := condition(statusOf(in), v1.PodReady); c.Status != v1.ConditionFalse {
		t.Errorf("readiness failing again: Ready %+v", c)
	}
}

func TestStatusFacts(t *testing.T) {
	w := newWorld(testPod(policy(v1.RestartPolicyNever))).sandbox("s1", false, 0, time.Hour).ctr("c1", "app", "s1", 0, exit(137, -time.Hour, -time.Second))
	w.obs.sandboxes[0].startTime = t0.Add(-72 * time.Hour)
	in := w.input()
	a := plan(in)
	st := podStatus(in, a, statusFacts{runtime: "berth", killed: map[string]string{"c1": "Container app failed liveness probe, will be restarted"}})
	if !st.StartTime.Equal(&metav1.Time{Time: t0.Add(-72 * time.Hour)}) {
		t.Errorf("start time %v, want the one the sandbox carries", st.StartTime)
	}
	if st.PodIP != "10.0.0.9" {
		t.Errorf("a finished pod keeps its IP: %q", st.PodIP)
	}
	if c := st.ContainerStatuses[0].State.Terminated; c == nil || c.Reason != "Error" || c.Message != "Container app failed liveness probe, will be restarted" {
		t.Errorf("terminated %+v", c)
	}
	if c := condition(st, v1.PodReady); c.Reason != "PodCompleted" {
		t.Errorf("Ready of a finished pod: %+v", c)
	}
	if st.QOSClass != v1.PodQOSBestEffort || st.HostIP != "" {
		t.Errorf("qos %s hostIP %q", st.QOSClass, st.HostIP)
	}
}
