package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/kube"
	"github.com/berth-project/berth/test/testutil"
)

// TestKubernetesNode: berth joins a real kube-apiserver (RBAC, Node
// authorization, NodeRestriction) with a node client certificate, as
// kubelet would: the Node registers with its capacity and becomes Ready,
// its Lease is renewed, pods bound to it run and their status reaches the
// API, a pod it cannot run is rejected, and a deleted pod is terminated
// with its preStop hook before it leaves the API.
func TestKubernetesNode(t *testing.T) {
	cluster := kube.Start(t)
	client := cluster.Client(t)
	hostDir := t.TempDir()
	reg := startRegistry(t, harness.RegistryOptions{TLS: true, Username: "berth", Password: "s3cret"})
	private := markedImage(t, "private")
	push(t, reg, "e2e/private:1", private.img)
	push(t, reg, "e2e/private:2", private.img) // pulled by nobody: its pull needs credentials
	e := newEnvWith(t, func(d *harness.Daemon) {
		d.AddArgs("--kubeconfig", cluster.NodeKubeconfig(t, d.NodeName), "--node-labels", "example.com/rack=r1")
		if err := d.SetRegistryConfig(fmt.Sprintf("registries:\n  %q:\n    caFiles: [%q]\n", reg.Host, reg.CAFile)); err != nil {
			t.Fatal(err)
		}
	})
	node := e.d.NodeName
	ns := "default"
	// Runs before berthd's cleanup: the API's pods leave the node first.
	t.Cleanup(func() { deleteAllPods(t, client, ns) })

	// Registered with capacity, labels and node info, then Ready.
	var n *corev1.Node
	testutil.Eventually(t, "node "+node+" Ready", func() bool {
		var err error
		n, err = client.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
		return err == nil && nodeReady(n)
	})
	if cpu := n.Status.Capacity[corev1.ResourceCPU]; cpu.Value() != int64(runtime.NumCPU()) {
		t.Errorf("capacity cpu %s, want %d", cpu.String(), runtime.NumCPU())
	}
	if pods := n.Status.Allocatable[corev1.ResourcePods]; pods.Value() != 110 {
		t.Errorf("allocatable pods %s", pods.String())
	}
	if mem := n.Status.Capacity[corev1.ResourceMemory]; mem.Value() < 64<<20 {
		t.Errorf("capacity memory %s", mem.String())
	}
	info := n.Status.NodeInfo
	if !strings.HasPrefix(info.ContainerRuntimeVersion, "berth://") || info.KernelVersion == "" || info.BootID == "" || info.Architecture != runtime.GOARCH {
		t.Errorf("node info %+v", info)
	}
	if n.Labels["kubernetes.io/hostname"] != node || n.Labels["example.com/rack"] != "r1" {
		t.Errorf("labels %v", n.Labels)
	}

	// The Lease is renewed.
	lease, err := client.CoordinationV1().Leases("kube-node-lease").Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ptr.Deref(lease.Spec.HolderIdentity, "") != node || ptr.Deref(lease.Spec.LeaseDurationSeconds, 0) != 40 {
		t.Errorf("lease %+v", lease.Spec)
	}
	testutil.Eventually(t, "the lease renewed", func() bool {
		l, err := client.CoordinationV1().Leases("kube-node-lease").Get(context.Background(), node, metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime.After(lease.Spec.RenewTime.Time)
	})

	// A pod created in the API runs, and its status comes back.
	web := apiPod("web", node, func(p *corev1.Pod) {
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](3) // sleep ignores SIGTERM: killed after 3 s
		p.Spec.Volumes = []corev1.Volume{{Name: "out", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}}}}
		c := &p.Spec.Containers[0]
		c.VolumeMounts = []corev1.VolumeMount{{Name: "out", MountPath: "/out"}}
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
			Command: []string{"sh", "-c", "echo bye > /out/prestop"}}}}
	})
	created, err := client.CoreV1().Pods(ns).Create(context.Background(), web, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := waitAPIPod(t, client, ns, "web", "Running and Ready", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && podReady(p) && p.Status.PodIP != ""
	})
	if cs := got.Status.ContainerStatuses; len(cs) != 1 || !strings.HasPrefix(cs[0].ContainerID, "berth://") || cs[0].State.Running == nil {
		t.Errorf("container statuses %+v", cs)
	}
	if got.Status.HostIP == "" || got.Status.StartTime == nil || got.Status.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("status %+v", got.Status)
	}
	if sbs := e.podSandboxesNamed("web"); len(sbs) != 1 || sbs[0].GetMetadata().GetUid() != string(created.UID) {
		t.Errorf("sandboxes of web: %v", sbs)
	}
	// Its events reach the API as kubelet posts them.
	testutil.Eventually(t, "web's Pulled, Created and Started events in the API", func() bool {
		list, err := client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
			FieldSelector: "involvedObject.name=web,involvedObject.kind=Pod"})
		if err != nil {
			return false
		}
		seen := map[string]bool{}
		for _, ev := range list.Items {
			if ev.InvolvedObject.UID == created.UID && ev.Source.Host == node && ev.InvolvedObject.FieldPath == "spec.containers{main}" {
				seen[ev.Reason] = true
			}
		}
		return seen["Pulled"] && seen["Created"] && seen["Started"]
	})

	// Volumes from the API: a configMap (updated while the pod runs) and
	// the service account token kubelet would mount.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"greeting": "hello"}}
	if _, err := client.CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	vols := apiPod("vols", node, func(p *corev1.Pod) {
		p.Spec.AutomountServiceAccountToken = nil // the ServiceAccount admission plugin adds the token volume
		p.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
	})
	if _, err := client.CoreV1().Pods(ns).Create(context.Background(), vols, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	vp := waitAPIPod(t, client, ns, "vols", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	vid := strings.TrimPrefix(vp.Status.ContainerStatuses[0].ContainerID, "berth://")
	sa := "/var/run/secrets/kubernetes.io/serviceaccount/"
	if out, _, _ := e.exec(vid, "cat", "/cfg/greeting", sa+"namespace"); out != "hello"+ns {
		t.Errorf("configMap and namespace files: %q", out)
	}
	if out, _, code := e.exec(vid, "sh", "-c", "test -s "+sa+"token && test -s "+sa+"ca.crt && echo ok"); out != "ok\n" || code != 0 {
		t.Errorf("service account token and CA: %q (exit %d)", out, code)
	}
	cm.Data["greeting"] = "bye"
	if _, err := client.CoreV1().ConfigMaps(ns).Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// kubelet's bound is its sync period plus its cache's TTL: a minute
	// each, here too.
	testutil.EventuallyWithin(t, 3*time.Minute, "the configMap update in the volume", func() bool {
		out, _, _ := e.exec(vid, "cat", "/cfg/greeting")
		return out == "bye"
	})

	// An image from a registry that wants credentials: pulled with the
	// pod's imagePullSecrets, and not without them.
	auth := base64.StdEncoding.EncodeToString([]byte("berth:s3cret"))
	if _, err := client.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: fmt.Appendf(nil, `{"auths":{%q:{"auth":%q}}}`, reg.Host, auth)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"private", "private-nocreds"} {
		p := apiPod(name, node, func(p *corev1.Pod) {
			p.Spec.Containers[0].Image = reg.Ref("e2e/private:2")
			if name == "private" {
				p.Spec.Containers[0].Image = reg.Ref("e2e/private:1")
				p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "missing"}, {Name: "regcred"}}
			}
		})
		if _, err := client.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitAPIPod(t, client, ns, "private", "Running with its pull secret", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	waitAPIPod(t, client, ns, "private-nocreds", "failing to pull", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil &&
			(cs[0].State.Waiting.Reason == "ErrImagePull" || cs[0].State.Waiting.Reason == "ImagePullBackOff")
	})

	// A Job-style pod finishes and says so.
	job := apiPod("job", node, func(p *corev1.Pod) {
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		p.Spec.Containers[0].Command = []string{"sh", "-c", "exit 0"}
	})
	if _, err := client.CoreV1().Pods(ns).Create(context.Background(), job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAPIPod(t, client, ns, "job", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })

	// A pod asking for more CPU than the node has is rejected, as kubelet
	// rejects it.
	greedy := apiPod("greedy", node, func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1000")}
	})
	if _, err := client.CoreV1().Pods(ns).Create(context.Background(), greedy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rej := waitAPIPod(t, client, ns, "greedy", "rejected", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if rej.Status.Reason != "OutOfcpu" || !strings.Contains(rej.Status.Message, "Node didn't have enough resource: cpu") {
		t.Errorf("rejection %q: %q", rej.Status.Reason, rej.Status.Message)
	}
	if len(e.podSandboxesNamed("greedy")) != 0 {
		t.Error("a rejected pod got a sandbox")
	}

	// Deleted gracefully: preStop runs, then berth removes it from the API.
	if err := client.CoreV1().Pods(ns).Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "pod web gone from the API", func() bool {
		_, err := client.CoreV1().Pods(ns).Get(context.Background(), "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if out, err := os.ReadFile(filepath.Join(hostDir, "prestop")); err != nil || string(out) != "bye\n" {
		t.Errorf("preStop output %q, %v", out, err)
	}
	if sbs := e.podSandboxesNamed("web"); len(sbs) != 0 {
		t.Errorf("web's sandboxes left: %d", len(sbs))
	}
}

func apiPod(name, node string, mutate func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers: []corev1.Container{{Name: "main", Image: busybox, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sleep", "3600"}}},
		},
	}
	mutate(p)
	return p
}

func waitAPIPod(t *testing.T, client kubernetes.Interface, ns, name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var p *corev1.Pod
	testutil.Eventually(t, "pod "+name+" "+what, func() bool {
		var err error
		p, err = client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		return err == nil && cond(p)
	})
	return p
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// deleteAllPods removes the namespace's pods and waits until the API has
// none: berth finishes each deletion.
func deleteAllPods(t *testing.T, client kubernetes.Interface, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{}); err != nil {
		t.Errorf("delete pods: %v", err)
		return
	}
	testutil.EventuallyWithin(t, 2*time.Minute, "no pods of "+ns+" in the API", func() bool {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 0
	})
}

// podSandboxesNamed lists the runtime's sandboxes of the API pod name.
func (e *env) podSandboxesNamed(name string) []*runtimeapi.PodSandbox {
	e.t.Helper()
	resp, err := e.rt.ListPodSandbox(ctx(e.t), &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{"io.kubernetes.pod.name": name}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.GetItems()
}

// TestKubernetesBootstrap: with only a bootstrap token, berth asks for a
// node certificate by CSR (the test approves it, as an operator or the
// approver controller would), writes its kubeconfig, registers, and after a
// restart uses the certificate it kept without asking again.
func TestKubernetesBootstrap(t *testing.T) {
	cluster := kube.Start(t)
	client := cluster.Client(t)
	var kubeconfig, certDir string
	e := newEnvWith(t, func(d *harness.Daemon) {
		kubeconfig, certDir = filepath.Join(d.Dir, "kubelet.conf"), filepath.Join(d.Dir, "pki")
		d.AddArgs("--bootstrap-kubeconfig", cluster.BootstrapKubeconfig(t), "--kubeconfig", kubeconfig, "--cert-dir", certDir)
	})
	node := e.d.NodeName
	var csrName string
	testutil.Eventually(t, "a CSR for "+node, func() bool {
		list, err := client.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, csr := range list.Items {
			if csr.Spec.SignerName == "kubernetes.io/kube-apiserver-client-kubelet" && strings.HasPrefix(csr.Spec.Username, "system:bootstrap:") {
				csrName = csr.Name
				return true
			}
		}
		return false
	})
	approveCSR(t, client, csrName)
	testutil.Eventually(t, "node "+node+" Ready", func() bool {
		n, err := client.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
		return err == nil && nodeReady(n)
	})
	for _, f := range []string{kubeconfig, filepath.Join(certDir, "berth-client-current.pem")} {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v (want mode 0600)", f, fi, err)
		}
	}
	// The written kubeconfig is the node's: NodeRestriction lets it read
	// its own Node.
	if out, err := cluster.Kubectl(t, "--kubeconfig", kubeconfig, "get", "node", node, "-o", "name"); err != nil || strings.TrimSpace(out) != "node/"+node {
		t.Errorf("kubectl with berth's kubeconfig: %q, %v", out, err)
	}

	// Restarted: no new CSR, the Lease is renewed again with the kept
	// certificate.
	e.restart()
	lease, err := client.CoordinationV1().Leases("kube-node-lease").Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the lease renewed after the restart", func() bool {
		l, err := client.CoordinationV1().Leases("kube-node-lease").Get(context.Background(), node, metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime.After(lease.Spec.RenewTime.Time)
	})
	list, err := client.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Errorf("%d CSRs after the restart (%v), want the first only", len(list.Items), err)
	}
}

func approveCSR(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	csr, err := client.CertificatesV1().CertificateSigningRequests().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "E2E", Message: "approved by the test"})
	if _, err := client.CertificatesV1().CertificateSigningRequests().UpdateApproval(context.Background(), name, csr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
