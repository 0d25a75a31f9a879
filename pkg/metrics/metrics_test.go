package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-project/berth/pkg/podstatus"
)

func TestOperationType(t *testing.T) {
	for method, want := range map[string]string{
		"/runtime.v1.RuntimeService/RunPodSandbox":   "run_podsandbox",
		"/runtime.v1.RuntimeService/CreateContainer": "create_container",
		"/runtime.v1.ImageService/PullImage":         "pull_image",
		"/runtime.v1.RuntimeService/ExecSync":        "exec_sync",
	} {
		if got := operationType(method); got != want {
			t.Errorf("operationType(%s) = %q, want %q", method, got, want)
		}
	}
}

func TestPodMetrics(t *testing.T) {
	cache := podstatus.New()
	r := New()
	r.reg.MustRegister(&runningCollector{pods: cache})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := newPodWatcher(r, func() time.Time { return now })
	pass := func(pods ...*v1.Pod) {
		list := make([]v1.Pod, len(pods))
		for i, p := range pods {
			list[i] = *p
		}
		w.pass(list)
	}

	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u1"},
		Status: v1.PodStatus{ContainerStatuses: []v1.ContainerStatus{{Name: "main", State: v1.ContainerState{
			Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}}
	pass(pod)
	// Its image took 2 s to pull (a second pull of an image present is no pull).
	w.event(v1.Event{Reason: "Pulling", InvolvedObject: v1.ObjectReference{UID: "u1"}, LastTimestamp: metav1.NewTime(now.Add(500 * time.Millisecond))})
	w.event(v1.Event{Reason: "Pulled", Message: `Successfully pulled image "x" in 2s`, InvolvedObject: v1.ObjectReference{UID: "u1"},
		LastTimestamp: metav1.NewTime(now.Add(2500 * time.Millisecond))})
	w.event(v1.Event{Reason: "Pulled", Message: `Container image "x" already present on machine`, InvolvedObject: v1.ObjectReference{UID: "u1"},
		LastTimestamp: metav1.NewTime(now.Add(2900 * time.Millisecond))})
	now = now.Add(3 * time.Second)
	running := pod.DeepCopy()
	running.Status.InitContainerStatuses = []v1.ContainerStatus{{Name: "init", ContainerID: "berth://i1", State: v1.ContainerState{
		Terminated: &v1.ContainerStateTerminated{}}}}
	running.Status.ContainerStatuses[0] = v1.ContainerStatus{Name: "main", ContainerID: "berth://c1",
		State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}
	cache.Set(running)
	pass(running)
	pass(running) // the same container again is not a new start
	if n := testutil.ToFloat64(r.startedTotal.WithLabelValues("container")); n != 1 {
		t.Errorf("started containers %v, want 1", n)
	}
	want := `
# HELP kubelet_running_containers Number of containers currently running.
# TYPE kubelet_running_containers gauge
kubelet_running_containers{container_state="created"} 0
kubelet_running_containers{container_state="exited"} 1
kubelet_running_containers{container_state="running"} 1
# HELP kubelet_running_pods Number of pods with a running container.
# TYPE kubelet_running_pods gauge
kubelet_running_pods 1
`
	if err := testutil.GatherAndCompare(r.Gatherer(), strings.NewReader(want), "kubelet_running_pods", "kubelet_running_containers"); err != nil {
		t.Error(err)
	}
	families, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		switch f.GetName() {
		case "kubelet_pod_start_duration_seconds":
			if h := f.GetMetric()[0].GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != 3 {
				t.Errorf("pod start: %d samples, sum %v; want one of 3 s", h.GetSampleCount(), h.GetSampleSum())
			}
		case "kubelet_pod_start_sli_duration_seconds":
			if h := f.GetMetric()[0].GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != 1 {
				t.Errorf("pod start SLI: %d samples, sum %v; want one of 1 s (3 s less the 2 s pull)", h.GetSampleCount(), h.GetSampleSum())
			}
		}
	}
	// A restarted container is a new start; a pod started once is not
	// observed again.
	restarted := running.DeepCopy()
	restarted.Status.ContainerStatuses[0].ContainerID = "berth://c2"
	pass(restarted)
	if n := testutil.ToFloat64(r.startedTotal.WithLabelValues("container")); n != 2 {
		t.Errorf("started containers %v after a restart, want 2", n)
	}
	// A static pod that goes and comes back with its UID was restarted;
	// a new UID is a new pod.
	static := restarted.DeepCopy()
	static.Annotations = map[string]string{"kubernetes.io/config.source": "file"}
	pass()
	pass(static)
	other := static.DeepCopy()
	other.UID = "u2"
	pass(static, other)
	if n := testutil.ToFloat64(r.restartedPods.WithLabelValues("true")); n != 1 {
		t.Errorf("restarted static pods %v, want 1", n)
	}
	r.ObservePodWorker("sync", 20*time.Millisecond)
	if n := testutil.CollectAndCount(r.podWorker, "kubelet_pod_worker_duration_seconds"); n != 1 {
		t.Errorf("pod worker durations: %d series, want 1", n)
	}
}
