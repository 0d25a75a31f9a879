package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/testutil"
)

// Probes, hooks, sidecars and termination, as a kubectl user sees them on
// /pods and /events.

const probeImage = "berth.test/probeserver:1"

var (
	probeImageOnce sync.Once
	probeArchive   string
	probeImageErr  error
)

// importProbeImage builds (once per run) busybox plus test/probeserver
// and imports it.
func (e *env) importProbeImage() {
	e.t.Helper()
	probeImageOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-e2e-probeserver")
		if err != nil {
			probeImageErr = err
			return
		}
		bin := filepath.Join(dir, "probeserver")
		build := exec.Command("go", "build", "-o", bin, "../probeserver")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			probeImageErr = fmt.Errorf("build probeserver: %v\n%s", err, out)
			return
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			probeImageErr = err
			return
		}
		img, err := harness.BusyboxImage(v1.Config{Entrypoint: []string{"/probeserver"}})
		if err == nil {
			img, err = harness.WithFile(img, "probeserver", 0o755, data)
		}
		if err == nil {
			probeArchive = filepath.Join(dir, "probeserver.tar")
			err = harness.WriteDockerArchive(probeArchive, probeImage, img)
		}
		probeImageErr = err
	})
	if probeImageErr != nil {
		e.t.Fatal(probeImageErr)
	}
	e.berthctl("images", "import", probeArchive)
}

// containerIn is the running container of a static pod.
func (e *env) containerIn(pod, container string) string {
	e.t.Helper()
	resp, err := e.rt.ListContainers(ctx(e.t), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: map[string]string{"io.kubernetes.pod.name": pod + "-" + e.d.NodeName, "io.kubernetes.container.name": container}}})
	if err != nil || len(resp.GetContainers()) != 1 {
		e.t.Fatalf("running container %s of %s: %v %v", container, pod, resp.GetContainers(), err)
	}
	return resp.GetContainers()[0].GetId()
}

// sh runs a shell command in a static pod's container.
func (e *env) sh(pod, container, script string) string {
	e.t.Helper()
	return e.mustExec(e.containerIn(pod, container), "sh", "-c", script)
}

func (e *env) events() []corev1.Event {
	var list corev1.EventList
	e.apiGet("/events", &list)
	return list.Items
}

func (e *env) waitEvent(pod, reason, contains string) corev1.Event {
	e.t.Helper()
	var found corev1.Event
	testutil.Eventually(e.t, fmt.Sprintf("event %s %q of %s", reason, contains, pod), func() bool {
		for _, ev := range e.events() {
			if ev.InvolvedObject.Name == pod+"-"+e.d.NodeName && ev.Reason == reason && strings.Contains(ev.Message, contains) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

func containerNamed(p corev1.Pod, name string) corev1.ContainerStatus {
	for _, c := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if c.Name == name {
			return c
		}
	}
	return corev1.ContainerStatus{}
}

func podCondition(p corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func TestProbesNetworkHandlers(t *testing.T) {
	e := newEnv(t)
	e.importProbeImage()
	e.writeManifest("net.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: net}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: http
    image: %[1]s
    imagePullPolicy: Never
    args: [http]
    ports: [{name: web, containerPort: 8080}]
    readinessProbe: {httpGet: {path: /status, port: web}, periodSeconds: 1, failureThreshold: 1}
  - name: grpc
    image: %[1]s
    imagePullPolicy: Never
    args: [grpc]
    readinessProbe: {grpc: {port: 9090}, periodSeconds: 1, failureThreshold: 1}
  - name: tcp
    image: %[1]s
    imagePullPolicy: Never
    args: [tcp]
    readinessProbe: {tcpSocket: {port: 7000}, periodSeconds: 1, failureThreshold: 1}
`, probeImage))
	ready := func(name string, want bool) {
		t.Helper()
		e.waitPod("net", fmt.Sprintf("with %s ready=%v", name, want), func(p corev1.Pod) bool {
			c := containerNamed(p, name)
			return c.State.Running != nil && c.Ready == want
		})
	}
	// HTTP 200 and gRPC SERVING pass; nothing listens on the TCP port.
	ready("http", true)
	ready("grpc", true)
	ready("tcp", false)
	p, _ := e.agentPod("net")
	if podCondition(p, corev1.PodReady) != corev1.ConditionFalse || podCondition(p, corev1.ContainersReady) != corev1.ConditionFalse {
		t.Errorf("one container unready, pod conditions %+v", p.Status.Conditions)
	}
	e.waitEvent("net", "Unhealthy", "Readiness probe failed")
	e.sh("net", "tcp", "touch /tmp/tcp-open")
	ready("tcp", true)
	e.waitPod("net", "Ready", func(p corev1.Pod) bool { return podCondition(p, corev1.PodReady) == corev1.ConditionTrue })

	// Each flips back when its server says so.
	e.sh("net", "http", "echo 500 > /tmp/http-code")
	ready("http", false)
	e.waitEvent("net", "Unhealthy", "HTTP probe failed with statuscode: 500")
	e.sh("net", "grpc", "echo NOT_SERVING > /tmp/grpc-status")
	ready("grpc", false)
	e.waitEvent("net", "Unhealthy", "NOT_SERVING")
	e.waitPod("net", "not Ready", func(p corev1.Pod) bool { return podCondition(p, corev1.PodReady) == corev1.ConditionFalse })
	e.sh("net", "http", "rm /tmp/http-code")
	e.sh("net", "grpc", "rm /tmp/grpc-status")
	ready("http", true)
	ready("grpc", true)
	if p, _ := e.agentPod("net"); containerNamed(p, "http").RestartCount != 0 {
		t.Errorf("readiness restarted a container: %+v", containerNamed(p, "http"))
	}
}

func TestProbesLivenessAndStartup(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("live.yaml", sleeperManifest("live", `    livenessProbe:
      exec: {command: ["sleep", "10"]}
      timeoutSeconds: 1
      periodSeconds: 1
      failureThreshold: 2
`))
	// An exec probe that outlives its timeout fails; two failures kill the
	// container, which restarts at once (first restart) and then backs off.
	p := e.waitPod("live", "restarted by its liveness probe", func(p corev1.Pod) bool {
		return p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if last == nil || !strings.Contains(last.Message, "failed liveness probe") {
		t.Errorf("last state %+v, want the liveness kill", last)
	}
	e.waitEvent("live", "Unhealthy", "timed out")
	e.waitEvent("live", "Killing", "failed liveness probe, will be restarted")
	e.waitPod("live", "in back-off after its second liveness kill", func(p corev1.Pod) bool {
		c := p.Status.ContainerStatuses[0]
		return c.RestartCount >= 2 || (c.State.Waiting != nil && c.State.Waiting.Reason == "CrashLoopBackOff")
	})

	// A startup probe holds liveness back until it passes.
	e.writeManifest("slow.yaml", sleeperManifest("slow", `    startupProbe:
      exec: {command: ["test", "-f", "/tmp/started"]}
      periodSeconds: 1
      failureThreshold: 600
    livenessProbe:
      exec: {command: ["test", "-f", "/tmp/alive"]}
      periodSeconds: 1
      failureThreshold: 1
`))
	e.waitEvent("slow", "Unhealthy", "Startup probe failed")
	p = e.waitPod("slow", "running, not started", func(p corev1.Pod) bool {
		c := p.Status.ContainerStatuses[0]
		return c.State.Running != nil && c.Started != nil && !*c.Started
	})
	if c := p.Status.ContainerStatuses[0]; c.Ready || c.RestartCount != 0 {
		t.Errorf("before its startup probe passed: %+v", c)
	}
	for _, ev := range e.events() {
		if ev.InvolvedObject.Name == "slow-"+e.d.NodeName && strings.Contains(ev.Message, "Liveness") {
			t.Errorf("liveness ran before startup passed: %s", ev.Message)
		}
	}
	e.sh("slow", "main", "touch /tmp/started")
	// Started, then the failing liveness probe restarts it.
	e.waitPod("slow", "restarted by liveness once started", func(p corev1.Pod) bool {
		return p.Status.ContainerStatuses[0].RestartCount >= 1
	})
}

func TestLifecycleHooks(t *testing.T) {
	e := newEnv(t)
	logDir := t.TempDir()
	e.writeManifest("hooks.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: hooks}
spec:
  terminationGracePeriodSeconds: 20
  volumes: [{name: log, hostPath: {path: %s}}]
  containers:
  - name: main
    image: %s
    command: ["sh", "-c", "trap 'echo term >> /log/order; exit 0' TERM; echo main >> /log/order; while true; do sleep 0.2; done"]
    volumeMounts: [{name: log, mountPath: /log}]
    lifecycle:
      postStart: {exec: {command: ["sh", "-c", "echo poststart >> /log/order"]}}
      preStop: {exec: {command: ["sh", "-c", "echo prestop >> /log/order"]}}
`, logDir, busybox))
	e.waitPod("hooks", "running", running)
	if err := os.Remove(filepath.Join(e.d.Manifests, "hooks.yaml")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "pod hooks gone", func() bool { _, ok := e.agentPod("hooks"); return !ok })
	data, _ := os.ReadFile(filepath.Join(logDir, "order"))
	lines := strings.Fields(string(data))
	// postStart runs concurrently with the container's own start.
	if len(lines) != 4 || lines[2] != "prestop" || lines[3] != "term" {
		t.Errorf("order %q, want main and poststart, then prestop, then term", lines)
	}

	// A failing postStart hook kills the container, which restarts.
	e.writeManifest("badhook.yaml", sleeperManifest("badhook", `    lifecycle:
      postStart: {exec: {command: ["sh", "-c", "echo nope; exit 3"]}}
`))
	e.waitEvent("badhook", "FailedPostStartHook", "nope")
	p := e.waitPod("badhook", "restarted after its failed hook", func(p corev1.Pod) bool {
		c := p.Status.ContainerStatuses[0]
		return c.RestartCount >= 1 && c.LastTerminationState.Terminated != nil
	})
	if m := p.Status.ContainerStatuses[0].LastTerminationState.Terminated.Message; !strings.Contains(m, "PostStartHook failed") {
		t.Errorf("last state message %q", m)
	}
}

func TestTerminationGraceAndMessages(t *testing.T) {
	e := newEnv(t)
	// SIGTERM ignored: killed at the end of its grace period, shown
	// Terminating until then.
	e.writeManifest("stubborn.yaml", `apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: main
    image: `+busybox+`
    command: ["sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"]
`)
	e.waitPod("stubborn", "running", running)
	if err := os.Remove(filepath.Join(e.d.Manifests, "stubborn.yaml")); err != nil {
		t.Fatal(err)
	}
	p := e.waitPod("stubborn", "terminating", func(p corev1.Pod) bool { return p.DeletionTimestamp != nil })
	if p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != 3 {
		t.Errorf("deletion grace %v", p.DeletionGracePeriodSeconds)
	}
	if out := e.berthctl("pods"); !strings.Contains(out, "Terminating") {
		t.Errorf("berthctl pods while stopping:\n%s", out)
	}
	testutil.Eventually(t, "pod stubborn gone", func() bool { _, ok := e.agentPod("stubborn"); return !ok })
	if n := len(e.podSandboxes("stubborn")); n != 0 {
		t.Errorf("%d sandboxes left", n)
	}

	// Termination messages: the file, or the log's end on error.
	job := func(name, policy, script string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: %s
    terminationMessagePolicy: %s
    command: ["sh", "-c", %q]
`, name, busybox, policy, script)
	}
	e.writeManifest("msg.yaml", job("msg", "File", "echo 'all is lost' > /dev/termination-log; exit 4"))
	e.writeManifest("logs.yaml", job("logs", "FallbackToLogsOnError", "echo first; echo last words; exit 5"))
	failed := func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed }
	if m := e.waitPod("msg", "failed", failed).Status.ContainerStatuses[0].State.Terminated.Message; m != "all is lost\n" {
		t.Errorf("message %q", m)
	}
	if m := e.waitPod("logs", "failed", failed).Status.ContainerStatuses[0].State.Terminated.Message; m != "first\nlast words\n" {
		t.Errorf("message from logs %q", m)
	}
	if out := e.berthctl("pods"); !strings.Contains(out, "Error") {
		t.Errorf("berthctl pods of failed pods:\n%s", out)
	}
}

func TestSidecars(t *testing.T) {
	e := newEnv(t)
	logDir := t.TempDir()
	manifest := func(name, policy, appScript string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  restartPolicy: %s
  terminationGracePeriodSeconds: 10
  volumes: [{name: log, hostPath: {path: %s}}]
  initContainers:
  - name: side
    image: %s
    restartPolicy: Always
    command: ["sh", "-c", "trap 'echo side-term >> /log/%[1]s; exit 0' TERM; echo side >> /log/%[1]s; while true; do sleep 0.2; done"]
    volumeMounts: [{name: log, mountPath: /log}]
  containers:
  - name: app
    image: %[4]s
    command: ["sh", "-c", %[5]q]
    volumeMounts: [{name: log, mountPath: /log}]
`, name, policy, logDir, busybox, appScript)
	}
	order := func(name string) []string {
		data, _ := os.ReadFile(filepath.Join(logDir, name))
		return strings.Fields(string(data))
	}
	// A Job-style pod completes although its sidecar never exits; the
	// sidecar is stopped after the app.
	e.writeManifest("job.yaml", manifest("job", "Never", "echo app >> /log/job; sleep 1"))
	p := e.waitPod("job", "succeeded", func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	testutil.Eventually(t, "the sidecar stopped after the app", func() bool {
		return strings.Join(order("job"), " ") == "side app side-term"
	})
	if c := podCondition(p, corev1.PodReady); c != corev1.ConditionFalse {
		t.Errorf("completed pod Ready=%s", c)
	}
	if out := e.berthctl("pods"); !strings.Contains(out, "Completed") {
		t.Errorf("berthctl pods of a completed pod:\n%s", out)
	}

	// A long-running pod: the sidecar is restarted when it dies, the app
	// untouched; on removal the app stops first.
	e.writeManifest("svc.yaml", manifest("svc", "Always", "trap 'echo app-term >> /log/svc; exit 0' TERM; echo app >> /log/svc; while true; do sleep 0.2; done"))
	e.waitPod("svc", "running", running)
	e.sh("svc", "side", "kill 1")
	p = e.waitPod("svc", "with its sidecar restarted", func(p corev1.Pod) bool {
		return containerNamed(p, "side").RestartCount == 1 && containerNamed(p, "side").State.Running != nil
	})
	if c := containerNamed(p, "app"); c.RestartCount != 0 || c.State.Running == nil {
		t.Errorf("app after its sidecar restarted: %+v", c)
	}
	if err := os.Remove(filepath.Join(e.d.Manifests, "svc.yaml")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "pod svc gone", func() bool { _, ok := e.agentPod("svc"); return !ok })
	got := strings.Join(order("svc"), " ")
	if !strings.HasSuffix(got, "app-term side-term") {
		t.Errorf("order %q: want the app stopped before its sidecar", got)
	}
}

func TestProbesSurviveAgentRestart(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("flaky.yaml", sleeperManifest("flaky", `    readinessProbe:
      exec: {command: ["test", "-f", "/tmp/ready"]}
      periodSeconds: 1
`))
	e.waitEvent("flaky", "Unhealthy", "Readiness probe failed")
	before := e.containerIn("flaky", "main")
	e.restart()
	e.waitEvent("flaky", "Unhealthy", "Readiness probe failed") // probing resumed
	e.sh("flaky", "main", "touch /tmp/ready")
	p := e.waitPod("flaky", "ready", running)
	if c := p.Status.ContainerStatuses[0]; c.RestartCount != 0 || c.ContainerID != "berth://"+before {
		t.Errorf("after an agent restart: %+v, want container %s untouched", c, before)
	}
}
