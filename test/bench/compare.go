package main

import (
	"context"
	"fmt"
	"os"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// compareBench runs berth and kubelet + containerd side by side on the
// same machine, with the same images, runc, CNI plugins and manifests,
// alternating between them for rounds rounds, and prints medians, spread
// and the ratio berth/kubelet: static pods from manifests written to every
// container running and from manifests removed to every sandbox stopped
// (grace 0), machine CPU per started pod, and with 30 pods idle, memory
// and CPU per idle minute. Without containerd or a kubelet it says so and
// returns.
func compareBench(ctx context.Context, rounds int, idle time.Duration) error {
	fmt.Println("berth against kubelet + containerd (static pods, busybox sleep 3600, image present)")
	k, err := startKubeletNode(ctx)
	if err != nil {
		fmt.Printf("  kubelet + containerd not run: %v\n\n", err)
		return nil
	}
	defer k.stop()
	d, err := startBenchDaemon(ctx)
	if err != nil {
		return err
	}
	defer d.Cleanup()
	berth := &compared{name: "berth", run: berthAgent(d), daemons: func() []int { return []int{d.Pid()} }, shims: d.ShimPids}
	kube := &compared{name: "kubelet", run: &agentRun{manifests: k.manifests, rt: k.Runtime, log: k.logPath()},
		daemons: func() []int { return []int{k.kubelet.Process.Pid, k.Pid()} }, shims: k.ShimPids}
	nodes := []*compared{berth, kube}
	// A first pod on each, not counted: kubelet syncs its first pods
	// only once it has looked at its node.
	for _, c := range nodes {
		if _, _, err := c.start(ctx, 1); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if _, err := c.stop(ctx); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	fmt.Printf("  %-26s %-28s %-28s %s\n", "", "berth: median [min-max]", "kubelet + containerd", "berth/kubelet")
	for _, n := range []int{1, 10, 30} {
		ups := map[*compared][]time.Duration{}
		downs := map[*compared][]time.Duration{}
		cpu := map[*compared][]float64{}
		for range rounds {
			for _, c := range nodes {
				up, secs, err := c.start(ctx, n)
				if err != nil {
					return fmt.Errorf("%s, %d pods: %w", c.name, n, err)
				}
				down, err := c.stop(ctx)
				if err != nil {
					return fmt.Errorf("%s, %d pods: %w", c.name, n, err)
				}
				ups[c], downs[c], cpu[c] = append(ups[c], up), append(downs[c], down), append(cpu[c], secs/float64(n))
			}
		}
		compareRow(fmt.Sprintf("%d pods running", n), ups[berth], ups[kube])
		compareRow(fmt.Sprintf("%d pods stopped (grace 0)", n), downs[berth], downs[kube])
		if n == 30 {
			b, kb := medianFloat(cpu[berth]), medianFloat(cpu[kube])
			fmt.Printf(compareFormat, "machine CPU per pod", fmt.Sprintf("%.3f CPU-s", b), fmt.Sprintf("%.3f CPU-s", kb), b/kb)
		}
	}
	var pss, rss, idleCPU [2]float64
	for i, c := range nodes {
		if _, _, err := c.start(ctx, 30); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		procs := append(c.daemons(), c.shims()...)
		for _, pid := range procs {
			r, p, err := smapsRollup(pid)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			rss[i], pss[i] = rss[i]+r, pss[i]+p
		}
		before := ticksOf(procs)
		time.Sleep(idle) // measuring idleness: nothing to wait for
		idleCPU[i] = float64(ticksOf(procs)-before) / ticksPerSecond / idle.Minutes()
		if _, err := c.stop(ctx); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	fmt.Printf(compareFormat, "memory, 30 pods (PSS)", fmt.Sprintf("%.1f MiB", pss[0]), fmt.Sprintf("%.1f MiB", pss[1]), pss[0]/pss[1])
	fmt.Printf(compareFormat, "memory, 30 pods (RSS)", fmt.Sprintf("%.1f MiB", rss[0]), fmt.Sprintf("%.1f MiB", rss[1]), rss[0]/rss[1])
	fmt.Printf(compareFormat, "idle CPU per minute", fmt.Sprintf("%.3f CPU-s", idleCPU[0]), fmt.Sprintf("%.3f CPU-s", idleCPU[1]), idleCPU[0]/idleCPU[1])
	fmt.Println("  (berthd + its shims against kubelet + containerd + its shims; both nodes run throughout, the one not measured idle)")
	var bs [2]*cpuBreakdown
	for i, c := range nodes {
		if bs[i], err = c.breakdown(ctx, 30); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	printBreakdown([2]string{"berth", "kubelet"}, bs)
	fmt.Println()
	return nil
}

// breakdown starts and removes n pods with process accounting on and
// says where the machine's CPU went meanwhile.
func (c *compared) breakdown(ctx context.Context, n int) (*cpuBreakdown, error) {
	b := &cpuBreakdown{kinds: map[string]float64{}, otherNames: map[string]float64{}, pods: n}
	daemons := c.daemons()
	var d0, d1, self0, self1, busy0, busy1 uint64
	cpu, count, err := exitedCPU(func() error {
		d0, self0 = ticksOf(daemons), ticksOf([]int{os.Getpid()})
		var err error
		if busy0, _, err = busyTicks(); err != nil {
			return err
		}
		if _, _, err := c.start(ctx, n); err != nil {
			return err
		}
		if _, err := c.stop(ctx); err != nil {
			return err
		}
		// The shims exit once their pods are removed; their records come then.
		if err := c.run.wait(ctx, func() (bool, error) { return len(c.shims()) == 0, nil }, nil); err != nil {
			return fmt.Errorf("shims left: %w", err)
		}
		d1, self1 = ticksOf(daemons), ticksOf([]int{os.Getpid()})
		busy1, _, err = busyTicks()
		return err
	})
	if err != nil {
		return nil, err
	}
	accounted := 0.0
	for name, secs := range cpu {
		k := cpuKind(name)
		b.kinds[k] += secs
		if k == "other exited processes" {
			b.otherNames[name] += secs
		}
		b.spawned += count[name]
		accounted += secs
	}
	b.daemons = float64(d1-d0) / ticksPerSecond
	b.total = float64(busy1-busy0-(self1-self0)) / ticksPerSecond
	b.rest = b.total - accounted - b.daemons
	return b, nil
}

// compared is one side of the comparison.
type compared struct {
	name    string
	run     *agentRun
	daemons func() []int // the node's agent and runtime
	shims   func() []int
}

// start writes n manifests and returns the time until n containers run
// and the machine's CPU-seconds meanwhile.
func (c *compared) start(ctx context.Context, n int) (time.Duration, float64, error) {
	b0, _, err := busyTicks()
	if err != nil {
		return 0, 0, err
	}
	up, err := c.run.startPods(ctx, n, "0", "sleep 3600")
	if err != nil {
		return 0, 0, err
	}
	b1, _, err := busyTicks()
	return up, float64(b1-b0) / ticksPerSecond, err
}

// stop removes every manifest and returns the time until no sandbox is
// ready; then it waits, untimed, until none is left (kubelet leaves the
// removal of stopped sandboxes to its garbage collection, every minute:
// they are removed through the CRI here).
func (c *compared) stop(ctx context.Context) (time.Duration, error) {
	down, err := c.run.stopAll(ctx)
	if err != nil {
		return 0, err
	}
	if c.run.d == nil {
		resp, err := c.run.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil {
			return 0, err
		}
		for _, sb := range resp.GetItems() {
			if _, err := c.run.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.GetId()}); err != nil {
				return 0, err
			}
		}
	}
	return down, c.run.wait(ctx, func() (bool, error) {
		resp, err := c.run.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		return err == nil && len(resp.GetItems()) == 0, err
	}, nil)
}

func compareRow(name string, berth, kube []time.Duration) {
	spread := func(xs []time.Duration) string {
		s := sorted(xs)
		return fmt.Sprintf("%s [%s-%s]", short(median(s)), short(s[0]), short(s[len(s)-1]))
	}
	fmt.Printf(compareFormat, name, spread(berth), spread(kube), ratio(median(berth), median(kube)))
}

// compareFormat is a row: what, berth's figure, kubelet's, the ratio.
const compareFormat = "  %-26s %-28s %-28s %.2fx\n"

// short prints a duration to three figures or so.
func short(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
}

func ticksOf(pids []int) uint64 {
	var sum uint64
	for _, pid := range pids {
		t, _ := cpuTicks(pid)
		sum += t
	}
	return sum
}
