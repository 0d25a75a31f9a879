package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"
)

// probeBench measures what probes cost: 30 pods, each with an exec
// liveness probe and an HTTP readiness probe at period 1 s, for a while;
// machine-wide CPU (everything the probes make run: berthd, shims, runc,
// containerd) beyond the machine's idle rate, once with berth's own
// runtime and once with the agent driving Debian's containerd.
func probeBench(ctx context.Context, pods int, window time.Duration) error {
	fmt.Printf("probes (%d pods x exec liveness + HTTP readiness, period 1 s, %s)\n", pods, window)
	if err := livenessRestart(ctx, 5); err != nil {
		return fmt.Errorf("liveness restart: %w", err)
	}
	idle, err := machineCPURate(window / 4)
	if err != nil {
		return err
	}
	berth, berthExec, err := probeLoad(ctx, probeTarget{name: "berth"}, pods, window, idle)
	if err != nil {
		return fmt.Errorf("berth: %w", err)
	}
	if _, _, err := probeLoad(ctx, probeTarget{name: "berth, execs through runc", runc: true}, pods, 0, idle); err != nil {
		return fmt.Errorf("berth with runc: %w", err)
	}
	c, err := harness.StartContainerd(ctx)
	if err != nil {
		fmt.Printf("%-34s skipped: %v\n", "containerd", err)
		return nil
	}
	defer c.Cleanup()
	ctrd, ctrdExec, err := probeLoad(ctx, probeTarget{name: "containerd", c: c}, pods, window, idle)
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	fmt.Printf("%-34s %.2fx per probe run, %.1fx per ExecSync (targets: >= 10x, ExecSync <= 2 ms)\n",
		"ratio containerd/berth", ctrd/berth, ctrdExec/berthExec)
	return nil
}

// probeTarget is the runtime a probe load runs against: berth's own
// (with berth-exec, or with every exec through runc) or containerd.
type probeTarget struct {
	name string
	c    *harness.Containerd
	runc bool
}

// livenessRestart times, on berth's runtime, from the moment a liveness
// probe (exec, period 1 s, failureThreshold 1) starts failing to the
// container running again: a probe period at most, the kill and the
// first restart (no back-off).
func livenessRestart(ctx context.Context, samples int) error {
	d, err := startBenchDaemon(ctx)
	if err != nil {
		return err
	}
	defer d.Cleanup()
	a := berthAgent(d)
	if err := os.MkdirAll(d.Manifests, 0o755); err != nil {
		return err
	}
	var times []time.Duration
	for i := range samples {
		name := fmt.Sprintf("live-%d", i)
		if err := a.write(name+".yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: %s
    imagePullPolicy: Never
    command: ["sh", "-c", "touch /tmp/alive; exec sleep 3600"]
    livenessProbe: {exec: {command: ["test", "-f", "/tmp/alive"]}, periodSeconds: 1, failureThreshold: 1}
`, name, image)); err != nil {
			return err
		}
		var id string
		if err := a.wait(ctx, func() (bool, error) {
			resp, err := d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
				State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
			if err != nil || len(resp.GetContainers()) != 1 {
				return false, err
			}
			id = resp.GetContainers()[0].GetId()
			return true, nil
		}, nil); err != nil {
			return err
		}
		t0 := time.Now()
		if _, err := d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"rm", "/tmp/alive"}, Timeout: 10}); err != nil {
			return err
		}
		var back time.Time
		if err := a.wait(ctx, func() (bool, error) {
			resp, err := d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
				State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
			return err == nil && len(resp.GetContainers()) == 1 && resp.GetContainers()[0].GetId() != id, err
		}, &back); err != nil {
			return err
		}
		times = append(times, back.Sub(t0))
		if _, err := a.removeAll(ctx); err != nil {
			return err
		}
	}
	fmt.Printf("%-34s %9s median of %d (probe period 1 s included)\n", "liveness failure → running again", round(median(times)), samples)
	return nil
}

// probeLoad first times serial ExecSyncs of `true` in one pod's container
// (machine CPU per exec), then, if window > 0, runs the probe load for
// that long. It prints its figures and returns the CPU-milliseconds per
// probe run and per ExecSync.
func probeLoad(ctx context.Context, t probeTarget, pods int, window time.Duration, idleRate float64) (perProbe, perExec float64, err error) {
	d, err := harness.NewDaemon()
	if err != nil {
		return 0, 0, err
	}
	defer d.Cleanup()
	d.SetLogLevel("info")
	name, c := t.name, t.c
	if c != nil {
		d.SetRuntimeEndpoint("unix://" + c.Socket)
	}
	if t.runc {
		d.SetExecHelper("")
	}
	if err := d.Start(ctx); err != nil {
		return 0, 0, err
	}
	img, err := harness.BusyboxImage(v1.Config{Cmd: []string{"sh"}})
	if err != nil {
		return 0, 0, err
	}
	archive := filepath.Join(d.Dir, "busybox.tar")
	if err := harness.WriteDockerArchive(archive, image, img); err != nil {
		return 0, 0, err
	}
	if c != nil {
		err = c.Import(ctx, archive)
	} else {
		err = d.Import(ctx, archive)
	}
	if err != nil {
		return 0, 0, err
	}
	a := berthAgent(d)
	if err := os.MkdirAll(d.Manifests, 0o755); err != nil {
		return 0, 0, err
	}
	if err := a.write("probed-0.yaml", probedManifest("probed-0")); err != nil {
		return 0, 0, err
	}
	if err := a.wait(ctx, func() (bool, error) { return allReady(d, 1) }, nil); err != nil {
		return 0, 0, fmt.Errorf("pod not ready: %w", err)
	}
	rt := d.Runtime
	if c != nil {
		rt = c.Runtime
	}
	if perExec, err = execCost(ctx, rt, idleRate, 200); err != nil {
		return 0, 0, err
	}
	fmt.Printf("%-34s %5.1f ms CPU per ExecSync (serial `true`, one exec probe a second beside)\n", name, perExec)
	if window == 0 {
		return 0, perExec, nil
	}
	for i := 1; i < pods; i++ {
		name := fmt.Sprintf("probed-%d", i)
		if err := a.write(name+".yaml", probedManifest(name)); err != nil {
			return 0, 0, err
		}
	}
	if err := a.wait(ctx, func() (bool, error) { return allReady(d, pods) }, nil); err != nil {
		return 0, 0, fmt.Errorf("pods not ready: %w", err)
	}
	before, err := probeRuns(d)
	if err != nil {
		return 0, 0, err
	}
	rate, err := machineCPURate(window)
	if err != nil {
		return 0, 0, err
	}
	after, err := probeRuns(d)
	if err != nil {
		return 0, 0, err
	}
	runs := after - before
	cpuPerMin := (rate - idleRate) * 60
	perProbe = (rate - idleRate) * window.Seconds() * 1000 / float64(max(runs, 1))
	fmt.Printf("%-34s %6.2f CPU-s/min, %5.1f ms CPU per probe run (%d runs, %d restarts)\n",
		name, cpuPerMin, perProbe, runs, restarts(d))
	if _, err := a.removeAll(ctx); err != nil {
		return 0, 0, err
	}
	return perProbe, perExec, nil
}

// execCost is the machine CPU-milliseconds beyond idle that one ExecSync
// of `true` costs, over n serial ones in the agent's first container (the
// bench's own gRPC client included).
func execCost(ctx context.Context, rt runtimeapi.RuntimeServiceClient, idleRate float64, n int) (float64, error) {
	resp, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
	if err != nil || len(resp.GetContainers()) == 0 {
		return 0, fmt.Errorf("no running container to exec in: %v", err)
	}
	id := resp.GetContainers()[0].GetId()
	b0, t0, err := busyTicks()
	if err != nil {
		return 0, err
	}
	for range n {
		r, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"true"}, Timeout: 10})
		if err != nil {
			return 0, err
		}
		if r.GetExitCode() != 0 {
			return 0, fmt.Errorf("exec true: exit %d: %s", r.GetExitCode(), r.GetStderr())
		}
	}
	b1, t1, err := busyTicks()
	if err != nil {
		return 0, err
	}
	busy := float64(b1-b0)/ticksPerSecond - idleRate*t1.Sub(t0).Seconds()
	return busy * 1000 / float64(n), nil
}

func probedManifest(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: web
    image: %s
    imagePullPolicy: Never
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    livenessProbe: {exec: {command: ["true"]}, periodSeconds: 1}
    readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
`, name, image)
}

// allReady: n pods listed by the agent, each Ready.
func allReady(d *harness.Daemon, n int) (bool, error) {
	list, err := agentPods(d)
	if err != nil {
		return false, err
	}
	ready := 0
	for _, p := range list.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return ready == n, nil
}

func restarts(d *harness.Daemon) int32 {
	list, _ := agentPods(d)
	var n int32
	for _, p := range list.Items {
		for _, c := range p.Status.ContainerStatuses {
			n += c.RestartCount
		}
	}
	return n
}

// probeRuns is the number of probe runs so far, from the agent's
// prober_probe_total on /metrics/probes.
func probeRuns(d *harness.Daemon) (int, error) {
	body, err := apiGet(d, "/metrics/probes")
	if err != nil {
		return 0, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("/metrics/probes: %w", err)
	}
	total := 0.0
	if f := families["prober_probe_total"]; f != nil {
		for _, m := range f.GetMetric() {
			total += m.GetCounter().GetValue()
		}
	}
	return int(total), nil
}

func agentPods(d *harness.Daemon) (corev1.PodList, error) {
	var list corev1.PodList
	body, err := apiGet(d, "/pods")
	if err == nil {
		err = json.Unmarshal(body, &list)
	}
	return list, err
}

func apiGet(d *harness.Daemon, path string) ([]byte, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.APISocket)
	}}}
	resp, err := client.Get("http://berth" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", path, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// machineCPURate is the machine's busy CPU-seconds per second over d.
func machineCPURate(d time.Duration) (float64, error) {
	b0, t0, err := busyTicks()
	if err != nil {
		return 0, err
	}
	time.Sleep(d)
	b1, t1, err := busyTicks()
	if err != nil {
		return 0, err
	}
	return float64(b1-b0) / ticksPerSecond / t1.Sub(t0).Seconds(), nil
}

const ticksPerSecond = 100 // USER_HZ on Linux

// busyTicks sums the non-idle jiffies of all CPUs.
func busyTicks() (uint64, time.Time, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, time.Time{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	fields := strings.Fields(sc.Text()) // cpu user nice system idle iowait irq softirq steal ...
	var busy uint64
	for i, v := range fields[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, time.Now(), nil
}
