package e2e

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/berth-project/berth/pkg/source"
	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/kube"
	"github.com/berth-project/berth/test/testutil"
)

// TestKubernetesOffline: with the API server gone, berth goes on managing
// the node. Static pods are added and changed; pods from the API keep
// running; after a restart of berthd they are managed again from its
// journal (their configMap, secret and token too, so a lost sandbox comes
// back whole). When the API server returns, the latest statuses reach it,
// static pods get their mirror pods, and no pod is restarted.
func TestKubernetesOffline(t *testing.T) {
	cluster := kube.Start(t)
	client := cluster.Client(t)
	e := newEnvWith(t, func(d *harness.Daemon) {
		d.AddArgs("--kubeconfig", cluster.NodeKubeconfig(t, d.NodeName))
	})
	node, ns := e.d.NodeName, "default"
	bg := context.Background()
	down := false
	t.Cleanup(func() {
		if down {
			cluster.StartAPIServer(t)
		}
		// The API's pods leave the node before berthd stops; the mirror
		// pods go with their static pods.
		for _, name := range []string{"app", "after"} {
			client.CoreV1().Pods(ns).Delete(bg, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		}
		testutil.Eventually(t, "the API's pods gone", func() bool {
			return len(e.podSandboxesNamed("app")) == 0 && len(e.podSandboxesNamed("after")) == 0
		})
	})
	testutil.Eventually(t, "node "+node+" Ready", func() bool {
		n, err := client.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
		return err == nil && nodeReady(n)
	})

	if _, err := client.CoreV1().ConfigMaps(ns).Create(bg, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app-cfg"},
		Data: map[string]string{"greeting": "hello"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets(ns).Create(bg, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-secret"},
		Data: map[string][]byte{"password": []byte("hunter2")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	app := apiPod("app", node, func(p *corev1.Pod) {
		p.Spec.AutomountServiceAccountToken = nil // the ServiceAccount admission plugin adds the token volume
		p.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "app-cfg"}}}}}
		c := &p.Spec.Containers[0]
		c.VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
		c.Env = []corev1.EnvVar{{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "app-secret"}, Key: "password"}}}}
		c.EnvFrom = []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "app-cfg"}}}}
	})
	if _, err := client.CoreV1().Pods(ns).Create(bg, app, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	first := apiContainerID(waitAPIPod(t, client, ns, "app", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }))
	checkAppPod(t, e, first)
	e.writeManifest("local.yaml", sleeperManifest("local", ""))
	local := e.waitPod("local", "running", running)
	waitMirrorPod(t, client, "local-"+node)

	// The API server goes away: berth says so and carries on.
	cluster.StopAPIServer(t)
	down = true
	testutil.Eventually(t, "berth sees the API server unreachable", func() bool {
		var st source.UpstreamStatus
		e.apiGet("/upstream", &st)
		return st.Connection == "disconnected" && st.Error != ""
	})
	e.writeManifest("local.yaml", sleeperManifest("local", "    env: [{name: VERSION, value: '2'}]\n"))
	e.writeManifest("late.yaml", sleeperManifest("late", ""))
	e.waitPod("local", "replaced while offline", func(p corev1.Pod) bool {
		return running(p) && p.Status.ContainerStatuses[0].ContainerID != local.Status.ContainerStatuses[0].ContainerID
	})
	e.waitPod("late", "running while offline", running)
	if got := e.appContainerID(); got != first {
		t.Errorf("app's container %s while offline, was %s", got, first)
	}

	// berthd restarts with the API server still away: the pod from the API
	// is managed from the journal. Its sandbox is lost (as after a reboot)
	// and comes back with its volume, environment and token.
	e.restart()
	var st source.UpstreamStatus
	e.apiGet("/upstream", &st)
	if !st.FromJournal || !st.Complete {
		t.Errorf("upstream after the restart: %+v, want the journal's set", st)
	}
	sbs := e.podSandboxesNamed("app")
	if len(sbs) != 1 {
		t.Fatalf("app has %d sandboxes", len(sbs))
	}
	if _, err := e.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: sbs[0].GetId()}); err != nil {
		t.Fatal(err)
	}
	var second string
	testutil.Eventually(t, "app recreated from the journal", func() bool {
		second = e.appContainerID()
		return second != "" && second != first
	})
	checkAppPod(t, e, second)

	// The API server returns: the new container's status reaches it, the
	// static pod added meanwhile gets its mirror pod, nothing restarts.
	cluster.StartAPIServer(t)
	down = false
	waitAPIPod(t, client, ns, "app", "reporting the container started offline", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && apiContainerID(p) == second
	})
	waitMirrorPod(t, client, "late-"+node)
	// A pod created now runs only after berth has taken in the API's set
	// again, which is when an unneeded restart would have begun.
	if _, err := client.CoreV1().Pods(ns).Create(bg, apiPod("after", node, func(*corev1.Pod) {}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAPIPod(t, client, ns, "after", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	ready := 0
	for _, sb := range e.podSandboxesNamed("app") {
		if sb.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			ready++
		}
	}
	if got := e.appContainerID(); got != second || ready != 1 {
		t.Errorf("app's container %s (%d ready sandboxes) after the reconnect, want %s untouched", got, ready, second)
	}
}

// checkAppPod: the configMap volume, the environment from the secret and
// the configMap, and the service account token are in place.
func checkAppPod(t *testing.T, e *env, id string) {
	t.Helper()
	sa := "/var/run/secrets/kubernetes.io/serviceaccount/"
	out, _, code := e.exec(id, "sh", "-c", `cat /cfg/greeting; echo " $PASSWORD $CFG_greeting"; test -s `+sa+"token && echo token")
	if want := "hello hunter2 hello\ntoken\n"; out != want || code != 0 {
		t.Errorf("in %s: %q (exit %d), want %q", id, out, code, want)
	}
}

// appContainerID is the running container of the API pod "app" as the
// runtime lists it ("" if none runs).
func (e *env) appContainerID() string {
	e.t.Helper()
	resp, err := e.rt.ListContainers(ctx(e.t), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: map[string]string{"io.kubernetes.pod.name": "app"}}})
	if err != nil || len(resp.GetContainers()) != 1 {
		return ""
	}
	return resp.GetContainers()[0].GetId()
}

func apiContainerID(p *corev1.Pod) string {
	if len(p.Status.ContainerStatuses) == 0 {
		return ""
	}
	return strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "berth://")
}

// waitMirrorPod waits for the mirror pod of a static pod, owned by its Node.
func waitMirrorPod(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	testutil.Eventually(t, "mirror pod "+name, func() bool {
		p, err := client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		return err == nil && p.Annotations[corev1.MirrorPodAnnotationKey] != "" &&
			len(p.OwnerReferences) == 1 && p.OwnerReferences[0].Kind == "Node"
	})
}
