package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/testutil"
)

// The agent: static pods from the manifest directory, driven through the
// CRI, observed through its local API and the CRI as crictl would.

// writeManifest writes name atomically, as an editor or config tool should.
func (e *env) writeManifest(name, content string) {
	e.t.Helper()
	if err := os.MkdirAll(e.d.Manifests, 0o755); err != nil {
		e.t.Fatal(err)
	}
	tmp := filepath.Join(e.d.Manifests, ".tmp-"+name)
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.d.Manifests, name)); err != nil {
		e.t.Fatal(err)
	}
}

// apiGet reads one of the agent's API endpoints as JSON.
func (e *env) apiGet(path string, v any) {
	e.t.Helper()
	if err := json.Unmarshal([]byte(e.apiText(path)), v); err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
}

// agentPod is the pod of that manifest name as /pods reports it.
func (e *env) agentPod(name string) (corev1.Pod, bool) {
	var list corev1.PodList
	e.apiGet("/pods", &list)
	for _, p := range list.Items {
		if p.Name == name+"-"+e.d.NodeName {
			return p, true
		}
	}
	return corev1.Pod{}, false
}

// waitPod waits until the pod satisfies cond and returns it.
func (e *env) waitPod(name, what string, cond func(corev1.Pod) bool) corev1.Pod {
	e.t.Helper()
	var p corev1.Pod
	testutil.Eventually(e.t, "pod "+name+" "+what, func() bool {
		var ok bool
		p, ok = e.agentPod(name)
		return ok && cond(p)
	})
	return p
}

func running(p corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if !c.Ready {
			return false
		}
	}
	return true
}

// podSandboxes lists the runtime's sandboxes of the static pod name.
func (e *env) podSandboxes(name string) []*runtimeapi.PodSandbox {
	e.t.Helper()
	resp, err := e.rt.ListPodSandbox(ctx(e.t), &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{"io.kubernetes.pod.name": name + "-" + e.d.NodeName}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.GetItems()
}

func sleeperManifest(name, extra string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {app: %s}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: %s
    command: ["sleep", "3600"]
%s`, name, name, busybox, extra)
}

func TestStaticPodAddChangeRenameRemove(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("web.yaml", sleeperManifest("web", ""))
	p := e.waitPod("web", "running", running)
	if p.Annotations["kubernetes.io/config.source"] != "file" || p.Spec.NodeName != e.d.NodeName ||
		p.Status.QOSClass != corev1.PodQOSBestEffort || p.Status.PodIP == "" {
		t.Errorf("pod: annotations %v node %q qos %s ip %q", p.Annotations, p.Spec.NodeName, p.Status.QOSClass, p.Status.PodIP)
	}
	cid := p.Status.ContainerStatuses[0].ContainerID
	if !strings.HasPrefix(cid, "berth://") {
		t.Errorf("container ID %q", cid)
	}

	// Renaming the file changes nothing: same content, same pod.
	if err := os.Rename(filepath.Join(e.d.Manifests, "web.yaml"), filepath.Join(e.d.Manifests, "web2.yaml")); err != nil {
		t.Fatal(err)
	}
	var ms []struct {
		File string `json:"file"`
	}
	testutil.Eventually(t, "the rename to be seen", func() bool {
		e.apiGet("/manifests", &ms)
		return len(ms) == 1 && strings.HasSuffix(ms[0].File, "web2.yaml")
	})
	if p2, _ := e.agentPod("web"); p2.UID != p.UID || p2.Status.ContainerStatuses[0].ContainerID != cid {
		t.Errorf("rename replaced the pod: uid %s → %s", p.UID, p2.UID)
	}

	// A changed manifest is a new pod that replaces the old one.
	e.writeManifest("web2.yaml", sleeperManifest("web", "    env: [{name: V, value: two}]\n"))
	p3 := e.waitPod("web", "replaced", func(x corev1.Pod) bool { return x.UID != p.UID && running(x) })
	testutil.Eventually(t, "the old sandbox to go", func() bool { return len(e.podSandboxes("web")) == 1 })
	out, _, _ := e.exec(strings.TrimPrefix(p3.Status.ContainerStatuses[0].ContainerID, "berth://"), "sh", "-c", "echo $V")
	if out != "two\n" {
		t.Errorf("new pod's env V = %q", out)
	}

	// Removal takes everything: sandbox, containers, logs.
	if err := os.Remove(filepath.Join(e.d.Manifests, "web2.yaml")); err != nil {
		t.Fatal(err)
	}
	// The status goes right after the last object: wait for all three.
	testutil.Eventually(t, "the pod, its logs and its listing to be removed", func() bool {
		entries, _ := os.ReadDir(e.d.LogDir)
		_, listed := e.agentPod("web")
		return len(e.podSandboxes("web")) == 0 && len(entries) == 0 && !listed
	})
}

func TestStaticPodRestartPolicies(t *testing.T) {
	e := newEnv(t)
	pod := func(name, policy, script string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  restartPolicy: %s
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: %s
    command: ["sh", "-c", %q]
`, name, policy, busybox, script)
	}
	e.writeManifest("always.yaml", pod("always", "Always", "echo run; exit 1"))
	e.writeManifest("onfailure-ok.yaml", pod("onfailure-ok", "OnFailure", "exit 0"))
	e.writeManifest("never.yaml", pod("never", "Never", "exit 3"))

	ok := e.waitPod("onfailure-ok", "succeeded", func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if c := ok.Status.ContainerStatuses[0]; c.RestartCount != 0 || c.State.Terminated == nil || c.State.Terminated.Reason != "Completed" {
		t.Errorf("OnFailure exit 0: %+v", c)
	}
	never := e.waitPod("never", "failed", func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if c := never.Status.ContainerStatuses[0]; c.RestartCount != 0 || c.State.Terminated == nil || c.State.Terminated.ExitCode != 3 {
		t.Errorf("Never exit 3: %+v", c)
	}
	// Always: restarted at once, then after a growing back-off.
	p := e.waitPod("always", "in back-off after its second run", func(p corev1.Pod) bool {
		c := p.Status.ContainerStatuses[0]
		return c.RestartCount >= 2 && c.State.Waiting != nil && c.State.Waiting.Reason == "CrashLoopBackOff"
	})
	c := p.Status.ContainerStatuses[0]
	if c.LastTerminationState.Terminated == nil || c.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("last state: %+v", c.LastTerminationState)
	}
	if !strings.Contains(c.State.Waiting.Message, "back-off 20s") {
		t.Errorf("third restart waits %q, want a 20 s back-off", c.State.Waiting.Message)
	}
	// Only the current and the previous instance are kept (the oldest goes
	// in the pass after the new one started).
	var kept []*runtimeapi.Container
	testutil.Eventually(t, "two instances kept", func() bool {
		resp, err := e.rt.ListContainers(ctx(t), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
			LabelSelector: map[string]string{"io.kubernetes.pod.name": "always-" + e.d.NodeName}}})
		if err != nil {
			t.Fatal(err)
		}
		kept = resp.GetContainers()
		return len(kept) == 2
	})
	// Runs 1 and 2 came 10 s apart at least: the first back-off.
	starts := map[uint32]int64{}
	for _, ctr := range kept {
		st := e.status(ctr.GetId())
		starts[ctr.GetMetadata().GetAttempt()] = st.GetStartedAt()
	}
	if s1, s2 := starts[1], starts[2]; s1 == 0 || s2 == 0 || time.Duration(s2-s1) < 10*time.Second {
		t.Errorf("attempts 1 and 2 started %v apart, want the 10 s back-off (kept containers: %v)", time.Duration(s2-s1), starts)
	}
}

func TestStaticPodInvalidManifest(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("good.yaml", sleeperManifest("good", ""))
	e.writeManifest("bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers:\n  - name: a\n    image: img-a\n  - name: a\n    image: img-b\n")
	e.waitPod("good", "running", running)
	var ms []struct {
		File  string `json:"file"`
		Error string `json:"error"`
	}
	testutil.Eventually(t, "the invalid file to be reported", func() bool {
		e.apiGet("/manifests", &ms)
		for _, m := range ms {
			if strings.HasSuffix(m.File, "bad.yaml") && strings.Contains(m.Error, "spec.containers[1].name") {
				return true
			}
		}
		return false
	})
	if _, ok := e.agentPod("bad"); ok {
		t.Error("invalid manifest produced a pod")
	}
	// Fixing it applies it; the good pod is untouched throughout.
	good, _ := e.agentPod("good")
	e.writeManifest("bad.yaml", sleeperManifest("bad", ""))
	e.waitPod("bad", "running once fixed", running)
	if again, _ := e.agentPod("good"); again.Status.ContainerStatuses[0].ContainerID != good.Status.ContainerStatuses[0].ContainerID {
		t.Error("the valid pod was restarted")
	}
	out := e.berthctl("validate", "--node-name", "n1", filepath.Join(e.d.Manifests, "bad.yaml"))
	if !strings.Contains(out, "ok: pod default/bad-n1") {
		t.Errorf("berthctl validate: %s", out)
	}
}

func TestStaticPodSandboxKilledAndAgentRestart(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("keep.yaml", sleeperManifest("keep", ""))
	p := e.waitPod("keep", "running", running)

	e.writeManifest("crash.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  terminationGracePeriodSeconds: 0
  containers: [{name: main, image: %s, command: ["false"]}]
`, busybox))
	backingOff := func(x corev1.Pod) bool {
		c := x.Status.ContainerStatuses[0]
		return c.RestartCount >= 1 && c.State.Waiting != nil && c.State.Waiting.Reason == "CrashLoopBackOff"
	}
	crash := e.waitPod("crash", "in back-off", backingOff)

	// The agent dies (kill -9); meanwhile a manifest is added. Restarted,
	// it restarts nothing, keeps counts and back-off, and applies the new
	// manifest.
	e.d.Kill()
	e.writeManifest("late.yaml", sleeperManifest("late", ""))
	if err := e.d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.rt, e.im = e.d.Runtime, e.d.Images
	e.waitPod("late", "running after the restart", running)
	again := e.waitPod("keep", "running after the agent restarted", running)
	if again.Status.ContainerStatuses[0].ContainerID != p.Status.ContainerStatuses[0].ContainerID ||
		again.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("container after agent restart: %+v, was %s", again.Status.ContainerStatuses[0], p.Status.ContainerStatuses[0].ContainerID)
	}
	crashAgain := e.waitPod("crash", "still in back-off", backingOff)
	if got, was := crashAgain.Status.ContainerStatuses[0].RestartCount, crash.Status.ContainerStatuses[0].RestartCount; got < was || got > was+1 {
		t.Errorf("restart count %d after the agent restarted, was %d: back-off lost", got, was)
	}

	// The sandbox dies under the pod: a new one, and the container again.
	sbs := e.podSandboxes("keep")
	if len(sbs) != 1 {
		t.Fatalf("%d sandboxes", len(sbs))
	}
	if _, err := e.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: sbs[0].GetId()}); err != nil {
		t.Fatal(err)
	}
	re := e.waitPod("keep", "recreated", func(x corev1.Pod) bool {
		return running(x) && x.Status.ContainerStatuses[0].ContainerID != p.Status.ContainerStatuses[0].ContainerID
	})
	if re.Status.ContainerStatuses[0].RestartCount != 1 {
		t.Errorf("restart count after the sandbox died: %d, want 1", re.Status.ContainerStatuses[0].RestartCount)
	}
}

func TestStaticPodEnvAndVolumes(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	e.writeManifest("vols.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: vols
  labels: {tier: backend}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: %s
    command: ["sleep", "3600"]
    env:
    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: GREETING, value: "hello $(POD)"}
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    resources:
      limits: {memory: 64Mi}
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
    - {name: mem, mountPath: /mem}
    - {name: host, mountPath: /host}
    - {name: host, mountPath: /sub, subPath: inner}
    - {name: info, mountPath: /info}
  volumes:
  - {name: scratch, emptyDir: {}}
  - {name: mem, emptyDir: {medium: Memory, sizeLimit: 8Mi}}
  - {name: host, hostPath: {path: %s/data, type: DirectoryOrCreate}}
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
`, busybox, host))
	p := e.waitPod("vols", "running", running)
	id := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "berth://")
	out, _, code := e.exec(id, "sh", "-c",
		`echo "$POD|$IP|$GREETING|$MEM"; cat /info/labels; echo; touch /scratch/f /host/f /sub/g && echo rw; `+
			`grep " /mem " /proc/mounts | cut -d" " -f3,4 | grep -o "^tmpfs\|size=[0-9]*k"`)
	want := fmt.Sprintf("vols-%s|%s|hello vols-%s|64\ntier=\"backend\"\nrw\ntmpfs\nsize=8192k\n",
		e.d.NodeName, p.Status.PodIP, e.d.NodeName)
	if code != 0 || out != want {
		t.Errorf("exit %d, output:\n%s\nwant:\n%s", code, out, want)
	}
	for _, f := range []string{"data/f", "data/inner/g"} {
		if _, err := os.Stat(filepath.Join(host, f)); err != nil {
			t.Errorf("hostPath file %s: %v", f, err)
		}
	}
}

// podCgroupFile reads a file of the pod's cgroup on the host: the v1
// controller's hierarchy, or the unified one.
func podCgroupFile(t *testing.T, dir, controller, v1name, v2name string) string {
	t.Helper()
	paths := []string{filepath.Join("/sys/fs/cgroup", controller, dir, v1name), filepath.Join("/sys/fs/cgroup", dir, v2name)}
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("none of %v readable", paths)
	return ""
}

func TestStaticPodResourcesAndQoS(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("guaranteed.yaml", sleeperManifest("guaranteed",
		"    resources:\n      limits: {cpu: 250m, memory: 64Mi}\n"))
	e.writeManifest("burstable.yaml", sleeperManifest("burstable",
		"    resources:\n      requests: {cpu: 100m, memory: 32Mi}\n"))
	g := e.waitPod("guaranteed", "running", running)
	b := e.waitPod("burstable", "running", running)
	if g.Status.QOSClass != corev1.PodQOSGuaranteed || b.Status.QOSClass != corev1.PodQOSBurstable {
		t.Errorf("QoS classes %s, %s", g.Status.QOSClass, b.Status.QOSClass)
	}

	// Pod cgroups sit in the QoS hierarchy, with pod-level limits.
	gDir := e.d.CgroupRoot + "/pod" + string(g.UID)
	if got := podCgroupFile(t, gDir, "memory", "memory.limit_in_bytes", "memory.max"); got != "67108864" {
		t.Errorf("guaranteed pod memory limit %s, want 64Mi", got)
	}
	if got := podCgroupFile(t, gDir, "cpu", "cpu.cfs_quota_us", "cpu.max"); got != "25000" && got != "25000 100000" {
		t.Errorf("guaranteed pod CPU quota %s, want 25000", got)
	}
	bDir := e.d.CgroupRoot + "/burstable/pod" + string(b.UID)
	if got := podCgroupFile(t, bDir, "cpu", "cpu.shares", "cpu.weight"); got != "102" && got != "4" {
		t.Errorf("burstable pod CPU shares %s, want 102 (100m)", got)
	}

	// The container's own limits, as it sees them.
	id := strings.TrimPrefix(g.Status.ContainerStatuses[0].ContainerID, "berth://")
	out, _, _ := e.exec(id, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
	if strings.TrimSpace(out) != "67108864" {
		t.Errorf("container memory limit %q", out)
	}

	// Removal takes the pod cgroups too.
	for _, f := range []string{"guaranteed.yaml", "burstable.yaml"} {
		os.Remove(filepath.Join(e.d.Manifests, f))
	}
	testutil.Eventually(t, "the pod cgroups to go", func() bool {
		for _, dir := range []string{gDir, bDir} {
			for _, hierarchy := range []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup"} {
				if _, err := os.Stat(filepath.Join(hierarchy, dir)); !os.IsNotExist(err) {
					return false
				}
			}
		}
		return true
	})
}

func TestStaticPodImagePullPolicyAndInit(t *testing.T) {
	e := newEnv(t)
	e.writeManifest("never.yaml", `apiVersion: v1
kind: Pod
metadata: {name: never}
spec:
  containers: [{name: main, image: berth.test/absent:1, imagePullPolicy: Never}]
`)
	// Nothing listens on port 1: the pull fails at once.
	e.writeManifest("unreachable.yaml", `apiVersion: v1
kind: Pod
metadata: {name: unreachable}
spec:
  containers: [{name: main, image: "127.0.0.1:1/absent:1"}]
`)
	e.writeManifest("init.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: init}
spec:
  terminationGracePeriodSeconds: 0
  initContainers:
  - {name: first, image: %[1]s, command: ["sh", "-c", "echo one > /work/log"], volumeMounts: [{name: work, mountPath: /work}]}
  - {name: second, image: %[1]s, command: ["sh", "-c", "echo two >> /work/log"], volumeMounts: [{name: work, mountPath: /work}]}
  containers:
  - {name: main, image: %[1]s, command: ["sleep", "3600"], volumeMounts: [{name: work, mountPath: /work}]}
  volumes: [{name: work, emptyDir: {}}]
`, busybox))
	waiting := func(reasons ...string) func(corev1.Pod) bool {
		return func(p corev1.Pod) bool {
			w := p.Status.ContainerStatuses[0].State.Waiting
			return w != nil && slices.Contains(reasons, w.Reason)
		}
	}
	p := e.waitPod("never", "waiting on a local image", waiting("ErrImageNeverPull"))
	if p.Status.Phase != corev1.PodPending || !strings.Contains(p.Status.ContainerStatuses[0].State.Waiting.Message, "berth.test/absent:1") {
		t.Errorf("never: phase %s, %+v", p.Status.Phase, p.Status.ContainerStatuses[0].State.Waiting)
	}
	e.waitPod("unreachable", "in pull back-off", waiting("ImagePullBackOff"))

	p = e.waitPod("init", "running after its init containers", running)
	for _, s := range p.Status.InitContainerStatuses {
		if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			t.Errorf("init container %s: %+v", s.Name, s.State)
		}
	}
	if c := p.Status.Conditions; len(c) < 2 || c[1].Type != corev1.PodInitialized || c[1].Status != corev1.ConditionTrue {
		t.Errorf("conditions %+v", c)
	}
	out, _, _ := e.exec(strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "berth://"), "cat", "/work/log")
	if out != "one\ntwo\n" {
		t.Errorf("init containers ran out of order or not at all: %q", out)
	}
}

func TestStaticPodHostPort(t *testing.T) {
	e := newEnv(t)
	l, err := net.Listen("tcp", ":0") // a free port to use as the host port
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	e.writeManifest("web.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: httpd
    image: %s
    command: ["sh", "-c", "mkdir /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{containerPort: 8080, hostPort: %d}]
`, busybox, port))
	e.waitPod("web", "running", running)
	// Through loopback: the test's traffic never leaves the machine.
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	var body string
	testutil.Eventually(t, "the host port to answer", func() bool {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return true
	})
	if body != "hello-from-pod\n" {
		t.Errorf("GET %s: %q", url, body)
	}
}

func TestStaticPodGracefulRemovalAndHostNetwork(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	// The container answers SIGTERM by writing a file: removal must give
	// it the signal and its grace period before the kill.
	e.writeManifest("graceful.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: graceful}
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - name: main
    image: %s
    command: ["sh", "-c", "trap 'echo got-term > /out/term; exit 0' TERM; while true; do sleep 0.1; done"]
    volumeMounts: [{name: out, mountPath: /out}]
  volumes: [{name: out, hostPath: {path: %s}}]
`, busybox, host))
	e.writeManifest("hostnet.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: hostnet}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 0
  containers: [{name: main, image: %s, command: ["sleep", "3600"]}]
`, busybox))
	e.writeManifest("init-fails.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: init-fails}
spec:
  restartPolicy: Never
  initContainers: [{name: setup, image: %[1]s, command: ["sh", "-c", "exit 2"]}]
  containers: [{name: main, image: %[1]s, command: ["true"]}]
`, busybox))

	e.waitPod("graceful", "running", running)
	hn := e.waitPod("hostnet", "running", running)
	out, _, _ := e.exec(strings.TrimPrefix(hn.Status.ContainerStatuses[0].ContainerID, "berth://"), "hostname")
	if h, _ := os.Hostname(); strings.TrimSpace(out) != h {
		t.Errorf("host network pod's hostname %q, want the node's %q", out, h)
	}
	if hn.Status.PodIP == "" || hn.Status.PodIP != hn.Status.HostIP {
		t.Errorf("host network pod's IP %q, want the node's %q", hn.Status.PodIP, hn.Status.HostIP)
	}
	failed := e.waitPod("init-fails", "failed", func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if s := failed.Status.InitContainerStatuses[0]; s.State.Terminated == nil || s.State.Terminated.ExitCode != 2 {
		t.Errorf("failed init container: %+v", s.State)
	}
	if st := failed.Status.ContainerStatuses[0].State; st.Running != nil || st.Terminated != nil {
		t.Errorf("the app container ran after its init container failed: %+v", st)
	}

	if err := os.Remove(filepath.Join(e.d.Manifests, "graceful.yaml")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the graceful pod to go", func() bool { return len(e.podSandboxes("graceful")) == 0 })
	if b, err := os.ReadFile(filepath.Join(host, "term")); err != nil || string(b) != "got-term\n" {
		t.Errorf("the container did not get SIGTERM before it was removed: %q, %v", b, err)
	}
}

func TestStaticPodValidationErrors(t *testing.T) {
	e := newEnv(t)
	outside := filepath.Join(t.TempDir(), "outside.yaml")
	if err := os.WriteFile(outside, []byte(sleeperManifest("outside", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(e.d.Manifests, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(e.d.Manifests, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	bad := map[string]struct{ content, want string }{
		"syntax.yaml":   {"apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n spec: [\n", "line"},
		"kind.yaml":     {"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n", `kind "Deployment"`},
		"name.yaml":     {sleeperManifest("Bad_Name", ""), "metadata.name"},
		"quantity.yaml": {sleeperManifest("q", "    resources: {limits: {memory: lots}}\n"), "resources.limits[memory]"},
		"mount.yaml":    {sleeperManifest("m", "    volumeMounts: [{name: nope, mountPath: /x}]\n"), "volumeMounts[0].name"},
		"secret.yaml":   {sleeperManifest("s", "  volumes: [{name: v, secret: {secretName: s}}]\n"), "secret"},
		"probe.yaml":    {sleeperManifest("p", "    livenessProbe: {exec: {command: [true]}, tcpSocket: {port: 80}}\n"), "livenessProbe"},
		"dup-a.yaml":    {sleeperManifest("dup", ""), ""},
		"dup-b.yaml":    {sleeperManifest("dup", "    env: [{name: A, value: b}]\n"), "already defined"},
	}
	// The first definition of a pod keeps it: dup-a.yaml is written
	// before dup-b.yaml.
	e.writeManifest("dup-a.yaml", bad["dup-a.yaml"].content)
	for name, f := range bad {
		if name != "dup-a.yaml" {
			e.writeManifest(name, f.content)
		}
	}
	var ms []struct {
		File  string `json:"file"`
		Error string `json:"error"`
	}
	want := map[string]string{"link.yaml": "outside"}
	for name, f := range bad {
		if f.want != "" {
			want[name] = f.want
		}
	}
	testutil.Eventually(t, "every invalid file to be reported", func() bool {
		e.apiGet("/manifests", &ms)
		return len(ms) == len(bad)+1
	})
	for _, m := range ms {
		name := filepath.Base(m.File)
		w, ok := want[name]
		switch {
		case !ok && m.Error != "":
			t.Errorf("%s refused: %s", name, m.Error)
		case ok && (!strings.Contains(m.Error, w) || !strings.Contains(m.Error, name)):
			t.Errorf("%s: error %q, want one naming the file and %q", name, m.Error, w)
		}
	}
	// Only the one valid pod runs.
	e.waitPod("dup", "running", running)
	var list corev1.PodList
	e.apiGet("/pods", &list)
	if len(list.Items) != 1 {
		t.Errorf("%d pods from one valid manifest", len(list.Items))
	}
}

// What a crash of berthd between making a pod version's cgroup, volumes
// and log directory and creating its sandbox leaves is found and removed
// (kubelet's housekeeping does the same); what belongs to a pod the
// runtime has, the agent's or not, stays.
func TestOrphansSwept(t *testing.T) {
	e := newEnv(t)
	live := e.podConfig("live")
	e.runPod(live)
	if err := os.MkdirAll(live.LogDirectory, 0o755); err != nil {
		t.Fatal(err)
	}
	const uid = "0badc0de0badc0de0badc0de0badc0de"
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/" + e.d.CgroupRoot + "/besteffort")
	if len(cgroups) == 0 {
		t.Fatalf("no QoS cgroup %s/besteffort", e.d.CgroupRoot)
	}
	orphans := []string{
		filepath.Join(e.d.Root, "pods", uid, "volumes", "kubernetes.io~empty-dir", "data"),
		filepath.Join(e.d.LogDir, "default_ghost-"+e.d.NodeName+"_"+uid, "main"),
	}
	for _, c := range cgroups {
		orphans = append(orphans, filepath.Join(c, "pod"+uid))
	}
	for _, dir := range orphans {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "the orphaned pod version's cgroups, volumes and logs removed", func() bool {
		for _, dir := range orphans {
			if _, err := os.Stat(dir); err == nil {
				return false
			}
		}
		return true
	})
	if _, err := os.Stat(live.LogDirectory); err != nil {
		t.Errorf("the log directory of a pod the runtime has went: %v", err)
	}
}
