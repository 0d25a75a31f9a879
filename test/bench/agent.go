package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"
)

// agentBench measures the static pod agent: manifests written → all
// containers running, manifests deleted → all gone, change detection, and
// memory and idle CPU with 30 pods; and the floor for the same 30 pods
// (raw runc + CNI, all in parallel, as the agent's workers are).
func agentBench(ctx context.Context, idle time.Duration) error {
	d, err := harness.NewDaemon()
	if err != nil {
		return err
	}
	defer d.Cleanup()
	if err := d.Start(ctx); err != nil {
		return err
	}
	if err := importBusybox(ctx, d); err != nil {
		return err
	}
	a := berthAgent(d)
	fmt.Println("static pods (agent; busybox sleep 3600, image present)")
	var start30 time.Duration
	for _, n := range []int{1, 10, 30} {
		reps := 1
		if n == 1 {
			reps = 7 // one pod is quick: take the median of several
		}
		var ups, downs []time.Duration
		for range reps {
			up, err := a.startPods(ctx, n, "0", "sleep 3600")
			if err != nil {
				return err
			}
			down, err := a.removeAll(ctx)
			if err != nil {
				return err
			}
			ups, downs = append(ups, up), append(downs, down)
		}
		fmt.Printf("%-34s %9s running, %9s gone (grace 0)\n", fmt.Sprintf("%d pods", n), round(median(ups)), round(median(downs)))
		if n == 30 {
			start30 = ups[0]
		}
	}
	if _, err := a.startPods(ctx, 30, "30", `trap "" TERM; sleep 3600 & wait`); err != nil {
		return err
	}
	down, err := a.removeAll(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("%-34s %9s gone (grace 30 s, SIGTERM ignored)\n", "30 pods", round(down))

	lat, err := a.detection(ctx, 20)
	if err != nil {
		return err
	}
	fmt.Printf("%-34s %9s / %9s (median / p90)\n", "manifest change detected", round(median(lat)), round(p90(lat)))

	floor, err := floorParallel(ctx, d, 30)
	if err != nil {
		return err
	}
	fmt.Printf("%-34s %9s; ratio agent/floor %.2fx (target <= 1.3x)\n",
		"floor 30 pods in parallel", round(floor), ratio(start30, floor))

	if _, err := a.startPods(ctx, 30, "0", "sleep 3600"); err != nil {
		return err
	}
	if err := a.memory(ctx, idle); err != nil {
		return err
	}
	_, err = a.removeAll(ctx)
	return err
}

// agentRun drives a node's static pods: manifests written to its
// directory, containers seen through its runtime's CRI.
type agentRun struct {
	d         *harness.Daemon // nil for a node other than berth
	manifests string
	rt        runtimeapi.RuntimeServiceClient
	log       string // where to look when it times out
	gen       int
}

func berthAgent(d *harness.Daemon) *agentRun {
	return &agentRun{d: d, manifests: d.Manifests, rt: d.Runtime, log: d.LogPath()}
}

func (a *agentRun) manifest(name, grace, script string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: %s
  containers:
  - name: main
    image: %s
    command: ["sh", "-c", %q]
`, name, grace, image, script)
}

// write puts a manifest in place atomically.
func (a *agentRun) write(name, content string) error {
	tmp := filepath.Join(a.manifests, ".tmp-"+name)
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(a.manifests, name))
}

// startPods writes n manifests and times until n containers run.
func (a *agentRun) startPods(ctx context.Context, n int, grace, script string) (time.Duration, error) {
	if err := os.MkdirAll(a.manifests, 0o755); err != nil {
		return 0, err
	}
	a.gen++
	t0 := time.Now()
	for i := range n {
		name := fmt.Sprintf("p%d-%d", a.gen, i)
		if err := a.write(name+".yaml", a.manifest(name, grace, script)); err != nil {
			return 0, err
		}
	}
	var done time.Time
	err := a.wait(ctx, func() (bool, error) {
		resp, err := a.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
			State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
		return err == nil && len(resp.GetContainers()) == n, err
	}, &done)
	return done.Sub(t0), err
}

// wait polls cond (every 5 ms, light enough not to slow berthd down) for
// up to 2 minutes; when since is given it is replaced by the time cond
// first held.
func (a *agentRun) wait(ctx context.Context, cond func() (bool, error), since *time.Time) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			if since != nil {
				*since = time.Now()
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out; see %s", a.log)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// removeAll deletes every manifest and times until no sandbox is left.
func (a *agentRun) removeAll(ctx context.Context) (time.Duration, error) {
	return a.deleteManifests(ctx, nil)
}

// stopAll deletes every manifest and times until no sandbox is ready:
// every pod stopped, whenever its runtime removes what is left of it.
func (a *agentRun) stopAll(ctx context.Context) (time.Duration, error) {
	return a.deleteManifests(ctx, &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}})
}

// deleteManifests deletes every manifest and times until the runtime
// lists no sandbox that passes filter.
func (a *agentRun) deleteManifests(ctx context.Context, filter *runtimeapi.PodSandboxFilter) (time.Duration, error) {
	entries, err := os.ReadDir(a.manifests)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	for _, e := range entries {
		if err := os.Remove(filepath.Join(a.manifests, e.Name())); err != nil {
			return 0, err
		}
	}
	var done time.Time
	err = a.wait(ctx, func() (bool, error) {
		resp, err := a.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: filter})
		return err == nil && len(resp.GetItems()) == 0, err
	}, &done)
	return done.Sub(t0), err
}

// detection times from writing a manifest to the agent's API listing it.
func (a *agentRun) detection(ctx context.Context, samples int) ([]time.Duration, error) {
	listed := func(file string) (bool, error) {
		body, err := apiGet(a.d, "/manifests")
		if err != nil {
			return false, err
		}
		var ms []struct {
			File string `json:"file"`
		}
		if err := json.Unmarshal(body, &ms); err != nil {
			return false, err
		}
		for _, m := range ms {
			if filepath.Base(m.File) == file {
				return true, nil
			}
		}
		return false, nil
	}
	var out []time.Duration
	for i := range samples {
		name := fmt.Sprintf("detect-%d", i)
		t0 := time.Now()
		if err := a.write(name+".yaml", a.manifest(name, "0", "sleep 3600")); err != nil {
			return nil, err
		}
		var seen time.Time
		if err := a.wait(ctx, func() (bool, error) { return listed(name + ".yaml") }, &seen); err != nil {
			return nil, err
		}
		out = append(out, seen.Sub(t0))
		if err := os.Remove(filepath.Join(a.manifests, name+".yaml")); err != nil {
			return nil, err
		}
	}
	_, err := a.removeAll(ctx)
	return out, err
}

// memory prints berthd's and the shims' RSS and PSS, and berthd's CPU
// time over an idle period, with the agent's pods running.
func (a *agentRun) memory(ctx context.Context, idle time.Duration) error {
	resp, err := a.d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return err
	}
	var shimRSS, shimPSS float64
	for _, sb := range resp.GetItems() {
		st, err := a.d.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.GetId(), Verbose: true})
		if err != nil {
			return err
		}
		var info struct {
			ShimPid int `json:"shimPid"`
		}
		json.Unmarshal([]byte(st.GetInfo()["info"]), &info)
		r, p, err := smapsRollup(info.ShimPid)
		if err != nil {
			return err
		}
		shimRSS, shimPSS = shimRSS+r, shimPSS+p
	}
	rss, pss, err := smapsRollup(a.d.Pid())
	if err != nil {
		return err
	}
	n := len(resp.GetItems())
	fmt.Printf("memory with %d agent pods\n", n)
	fmt.Printf("%-34s %8.2f MiB RSS, %.2f MiB PSS\n", "berthd (runtime + agent)", rss, pss)
	fmt.Printf("%-34s %8.2f MiB RSS, %.2f MiB PSS\n", fmt.Sprintf("%d shims together", n), shimRSS, shimPSS)
	fmt.Printf("%-34s %8.2f MiB PSS; target <= 48 MiB (kubelet + containerd: the comparison above)\n", "berthd + shims", pss+shimPSS)
	before, err := cpuTicks(a.d.Pid())
	if err != nil {
		return err
	}
	time.Sleep(idle) // measuring idleness: nothing to wait for
	after, err := cpuTicks(a.d.Pid())
	if err != nil {
		return err
	}
	secs := float64(after-before) / 100
	fmt.Printf("%-34s %8.3f CPU-s over %s; target <= 0.05 per minute\n\n", "berthd idle with agent pods", secs, idle)
	return nil
}

// floorParallel starts n pods' worth of raw runc + CNI at once and returns
// the time until the last container runs. Its bundles come from one pod
// berth made through the CRI, so both sides run the same containers.
func floorParallel(ctx context.Context, d *harness.Daemon, n int) (time.Duration, error) {
	b := &berthRun{d: d}
	if err := b.iteration(ctx, 0, true); err != nil {
		return 0, err
	}
	bs, err := copyBundles(d, b.lastPod, b.lastCtr)
	if err != nil {
		return 0, err
	}
	defer d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: b.lastPod})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var longest time.Duration
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := &floorRun{d: d, b: bs}
			if err := f.iteration(ctx, 1000+i); err != nil {
				errs <- err
				return
			}
			mu.Lock()
			longest = max(longest, f.total[0])
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	return longest, <-errs
}
