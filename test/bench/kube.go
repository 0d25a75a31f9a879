package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/kube"
)

// kubeBench measures berth as a node of a real control plane: the time
// from a pod created in the API to Running seen through a watch
// (kubelet's pod-startup SLI) against the same pod as a static pod, the
// node's API requests per idle minute with 30 pods, and berthd's memory
// with the kubernetes plugin on.
func kubeBench(ctx context.Context, samples int, idle time.Duration) (err error) {
	bt := &benchT{}
	defer bt.cleanup()
	defer func() {
		switch r := recover().(type) {
		case nil:
		case benchFatal:
			err = r
		default:
			panic(r)
		}
	}()
	cluster := kube.Start(bt)
	d, err := harness.NewDaemon()
	if err != nil {
		return err
	}
	defer d.Cleanup()
	d.AddArgs("--kubeconfig", cluster.NodeKubeconfig(bt, d.NodeName))
	if err := d.Start(ctx); err != nil {
		return err
	}
	if err := importBusybox(ctx, d); err != nil {
		return err
	}
	client := cluster.Client(bt)
	a := berthAgent(d)
	if err := a.wait(ctx, func() (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, d.NodeName, metav1.GetOptions{})
		return err == nil && nodeReady(n), nil
	}, nil); err != nil {
		return fmt.Errorf("node %s not Ready: %w", d.NodeName, err)
	}

	fmt.Println("berth as a Kubernetes node (real etcd + kube-apiserver on loopback)")
	var viaAPI, viaAPIRunning, static []time.Duration
	for i := range samples + 1 { // the first of each is a warm-up
		running, up, err := apiPodStart(ctx, client, d, fmt.Sprintf("sli-%d", i))
		if err != nil {
			return err
		}
		// Deleted with grace 0, the pod leaves the API at once: its
		// container goes a moment later.
		if err := a.wait(ctx, func() (bool, error) {
			resp, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
			return err == nil && len(resp.GetItems()) == 0, err
		}, nil); err != nil {
			return err
		}
		s, err := a.startPods(ctx, 1, "0", "sleep 3600")
		if err != nil {
			return err
		}
		if _, err := a.removeAll(ctx); err != nil {
			return err
		}
		if i > 0 {
			viaAPI, viaAPIRunning, static = append(viaAPI, up), append(viaAPIRunning, running), append(static, s)
		}
	}
	printRow("API pod: container running (CRI)", viaAPIRunning)
	printRow("API pod: Running seen by a watch", viaAPI)
	printRow("static pod: container running (CRI)", static)
	fmt.Printf("%-34s %8.2fx (median)\n", "ratio API/static, container running", ratio(median(viaAPIRunning), median(static)))

	for i := range 30 {
		if _, err := client.CoreV1().Pods("default").Create(ctx, benchPod(fmt.Sprintf("idle-%d", i), d.NodeName), metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	if err := a.wait(ctx, func() (bool, error) {
		list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		running := 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == 30, nil
	}, nil); err != nil {
		return fmt.Errorf("30 API pods not Running: %w", err)
	}
	// The start's traffic (three events per container, status patches;
	// client-go sends at 5 requests/s) drains first: idle is after it.
	before, err := apiRequests(d)
	if err != nil {
		return err
	}
	for range 24 {
		time.Sleep(10 * time.Second) // measuring idleness: nothing to wait for
		now, err := apiRequests(d)
		if err != nil {
			return err
		}
		settled := now-before <= 3 // a lease renewal or two, a node read
		before = now
		if settled {
			break
		}
	}
	time.Sleep(idle) // measuring idleness: nothing to wait for
	after, err := apiRequests(d)
	if err != nil {
		return err
	}
	perMin := (after - before) / idle.Minutes()
	fmt.Printf("%-34s %8.1f requests/min over %s; target <= 12 (kubelet: 6 lease renewals + 6 node reads)\n", "API requests, idle, 30 pods", perMin, idle)
	rss, pss, err := smapsRollup(d.Pid())
	if err != nil {
		return err
	}
	fmt.Printf("%-34s %8.2f MiB RSS, %.2f MiB PSS\n\n", "berthd, kubernetes plugin, 30 pods", rss, pss)
	return client.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{})
}

func benchPod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			AutomountServiceAccountToken:  ptr.To(false), // as the static pod: no token to fetch
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers: []corev1.Container{{Name: "main", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sh", "-c", "sleep 3600"}}},
		},
	}
}

// apiPodStart creates a pod and times until its container runs (seen
// through the CRI) and until a watch sees it Running; then deletes it and
// waits until it is gone from the API.
func apiPodStart(ctx context.Context, client kubernetes.Interface, d *harness.Daemon, name string) (running, watched time.Duration, err error) {
	pods := client.CoreV1().Pods("default")
	t0 := time.Now()
	created, err := pods.Create(ctx, benchPod(name, d.NodeName), metav1.CreateOptions{})
	if err != nil {
		return 0, 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	w, err := pods.Watch(wctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(),
		ResourceVersion: created.ResourceVersion})
	if err != nil {
		return 0, 0, err
	}
	defer w.Stop()
	seen := make(chan time.Duration, 1)
	go func() {
		defer close(seen)
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Modified && p.Status.Phase == corev1.PodRunning {
				seen <- time.Since(t0)
				return
			}
		}
	}()
	a := berthAgent(d)
	var at time.Time
	if err := a.wait(ctx, func() (bool, error) {
		resp, err := d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
			State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
		return err == nil && len(resp.GetContainers()) == 1, err
	}, &at); err != nil {
		return 0, 0, err
	}
	running = at.Sub(t0)
	watched, ok := <-seen
	if !ok {
		return 0, 0, fmt.Errorf("pod %s: no Running seen within 2 minutes", name)
	}
	if err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		return 0, 0, err
	}
	return running, watched, a.wait(ctx, func() (bool, error) {
		_, err := pods.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}, nil)
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// apiRequests sums rest_client_requests_total from berthd's /metrics.
func apiRequests(d *harness.Daemon) (float64, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", d.APISocket)
		},
	}}
	resp, err := client.Get("http://berth/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("/metrics: %s: %s", resp.Status, body)
	}
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "rest_client_requests_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("/metrics: %q: %w", line, err)
		}
		sum, found = sum+v, true
	}
	if !found {
		return 0, fmt.Errorf("/metrics has no rest_client_requests_total")
	}
	return sum, sc.Err()
}

// benchT stands in for a *testing.T where test/kube wants one: a fatal
// error ends kubeBench with it, cleanups run when kubeBench returns.
type benchT struct {
	cleanups []func()
	failed   bool
}

type benchFatal struct{ msg string }

func (f benchFatal) Error() string { return f.msg }

func (b *benchT) Helper()                      {}
func (b *benchT) Cleanup(f func())             { b.cleanups = append(b.cleanups, f) }
func (b *benchT) Failed() bool                 { return b.failed }
func (b *benchT) Logf(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }
func (b *benchT) Fatal(a ...any)               { b.failed = true; panic(benchFatal{fmt.Sprint(a...)}) }
func (b *benchT) Fatalf(format string, a ...any) {
	b.failed = true
	panic(benchFatal{fmt.Sprintf(format, a...)})
}

func (b *benchT) TempDir() string {
	dir, err := os.MkdirTemp("", "berth-bench-kube-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (b *benchT) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
}
