// Command bench measures berth against the floor it is built on, and
// prints figures and ratios (`make bench`; never part of the tests):
//
//   - N times RunPodSandbox → CreateContainer → StartContainer, then
//     StopPodSandbox → RemovePodSandbox, through the CRI socket;
//   - the floor: the same bundles started with raw `runc run -d` (pause,
//     then container) plus a direct CNI ADD (and DEL) through libcni;
//   - berthd's RSS, each berth-shim's RSS and PSS with 10 pods running,
//     and berthd's CPU time over an idle period with those pods;
//   - container log throughput through the shim against `cat > file`;
//   - and the agent, probe, Kubernetes, CRI operation and pull figures.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"
)

const image = "berth.bench/busybox:1"

func main() {
	n := flag.Int("n", 20, "iterations")
	pods := flag.Int("pods", 10, "pods kept running for the memory and idle CPU figures")
	idle := flag.Duration("idle", 60*time.Second, "idle period for berthd's CPU figure")
	agentIdle := flag.Duration("agent-idle", 60*time.Second, "idle period for the agent's CPU figure (0 skips the agent figures)")
	pullMiB := flag.Int64("pull-mib", 100, "size of the image pulled from a local registry (0 skips the pull figures)")
	samples := flag.Int("samples", 100, "samples per CRI operation for the per-operation figures (0 skips them)")
	probeWindow := flag.Duration("probe-window", 60*time.Second, "how long the probe load is measured (0 skips the probe figures)")
	probePods := flag.Int("probe-pods", 30, "pods of the probe load")
	logMiB := flag.Int64("log-mib", 256, "bytes a container writes to its log for the log throughput figures, in MiB (0 skips them)")
	kubeIdle := flag.Duration("kube-idle", 60*time.Second, "idle period for the API request figure of berth as a Kubernetes node (0 skips the Kubernetes figures)")
	compareRounds := flag.Int("compare-rounds", 3, "rounds of berth against kubelet + containerd, alternating (0 skips them)")
	berthOnly := flag.Bool("berth-only", false, "measure berth alone: no kubelet + containerd")
	flag.Parse()
	if *compareRounds > 0 && !*berthOnly {
		if err := compareBench(context.Background(), *compareRounds, *idle); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if err := run(*n, *pods, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if *agentIdle > 0 {
		if err := agentBench(context.Background(), *agentIdle); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if *logMiB > 0 {
		if err := logBench(context.Background(), *logMiB<<20, 3); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if *kubeIdle > 0 {
		if err := kubeBench(context.Background(), 10, *kubeIdle); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if *probeWindow > 0 {
		if err := probeBench(context.Background(), *probePods, *probeWindow); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if *samples > 0 {
		if err := opsBench(context.Background(), *samples); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if *pullMiB == 0 {
		return
	}
	if err := pullBench(context.Background(), *pullMiB<<20, 5); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(n, pods int, idle time.Duration) error {
	d, err := harness.NewDaemon()
	if err != nil {
		return err
	}
	defer d.Cleanup()
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		return err
	}
	if err := importBusybox(ctx, d); err != nil {
		return err
	}

	fmt.Printf("berth bench: %d iterations, %d pods for memory, %s idle\n\n", n, pods, idle)
	b := &berthRun{d: d}
	var bundles *bundles
	for i := range n + 1 {
		keep := i == 0 // the first pod lends its bundles to the floor run; it is also the warm-up
		if err := b.iteration(ctx, i, keep); err != nil {
			return err
		}
		if keep {
			if bundles, err = copyBundles(d, b.lastPod, b.lastCtr); err != nil {
				return err
			}
		}
	}
	b.drop(0) // warm-up
	f := &floorRun{d: d, b: bundles}
	for i := range n + 1 {
		if err := f.iteration(ctx, i); err != nil {
			return err
		}
	}
	f.drop(0)
	if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: b.lastPod}); err != nil {
		return err
	}

	fmt.Println("pod start (median / p90)")
	printRow("berth RunPodSandbox", b.runp)
	printRow("berth CreateContainer", b.create)
	printRow("berth StartContainer", b.start)
	printRow("berth end to end", b.total)
	printRow("berth Stop+RemovePodSandbox", b.teardown)
	printRow("floor netns + CNI ADD", f.net)
	printRow("floor runc run -d pause", f.pause)
	printRow("floor runc run -d container", f.ctr)
	printRow("floor end to end", f.total)
	printRow("floor kill+delete + CNI DEL", f.teardown)
	fmt.Printf("%-34s %8.2fx (median), %.2fx (p90); target <= 1.5x\n\n", "ratio berth/floor end to end",
		ratio(median(b.total), median(f.total)), ratio(p90(b.total), p90(f.total)))

	return memoryAndIdle(ctx, d, pods, idle)
}

// importBusybox builds the benchmark's image and imports it into d.
// startBenchDaemon starts a berthd logging at info, as a node's does,
// with the bench's busybox imported; the caller cleans it up. After an
// error nothing of it is left.
func startBenchDaemon(ctx context.Context) (*harness.Daemon, error) {
	d, err := harness.NewDaemon()
	if err != nil {
		return nil, err
	}
	d.SetLogLevel("info")
	if err = d.Start(ctx); err == nil {
		err = importBusybox(ctx, d)
	}
	if err != nil {
		d.Cleanup()
		return nil, err
	}
	return d, nil
}

func importBusybox(ctx context.Context, d *harness.Daemon) error {
	img, err := harness.BusyboxImage(v1.Config{Cmd: []string{"sh"}})
	if err != nil {
		return err
	}
	archive := filepath.Join(d.Dir, "busybox.tar")
	if err := harness.WriteDockerArchive(archive, image, img); err != nil {
		return err
	}
	return d.Import(ctx, archive)
}

func printRow(name string, xs []time.Duration) {
	fmt.Printf("%-34s %9s / %9s\n", name, round(median(xs)), round(p90(xs)))
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func sorted(xs []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

func median(xs []time.Duration) time.Duration { return pct(sorted(xs), 50) }

func p90(xs []time.Duration) time.Duration { return pct(sorted(xs), 90) }

// memoryAndIdle keeps pods running and reads /proc for berthd and shims.
func memoryAndIdle(ctx context.Context, d *harness.Daemon, pods int, idle time.Duration) error {
	var ids []string
	for i := range pods {
		pod := podConfig(d, fmt.Sprintf("mem-%d", i))
		resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
		if err != nil {
			return err
		}
		ids = append(ids, resp.GetPodSandboxId())
		c, err := d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: resp.GetPodSandboxId(), Config: containerConfig(), SandboxConfig: pod})
		if err != nil {
			return err
		}
		if _, err := d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.GetContainerId()}); err != nil {
			return err
		}
	}
	var rss, pss []float64
	for _, id := range ids {
		resp, err := d.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
		if err != nil {
			return err
		}
		var info struct {
			ShimPid int `json:"shimPid"`
		}
		json.Unmarshal([]byte(resp.GetInfo()["info"]), &info)
		r, p, err := smapsRollup(info.ShimPid)
		if err != nil {
			return err
		}
		rss, pss = append(rss, r), append(pss, p)
	}
	berthRSS, _, err := smapsRollup(d.Pid())
	if err != nil {
		return err
	}
	fmt.Printf("memory with %d pods running\n", pods)
	fmt.Printf("%-34s %8.2f MiB\n", "berthd RSS", berthRSS)
	fmt.Printf("%-34s %8.2f MiB mean, %.2f max; target <= 4 MiB\n", "berth-shim RSS", mean(rss), maxOf(rss))
	fmt.Printf("%-34s %8.2f MiB mean, %.2f max; target <= 1.5 MiB\n\n", "berth-shim PSS", mean(pss), maxOf(pss))

	before, err := cpuTicks(d.Pid())
	if err != nil {
		return err
	}
	time.Sleep(idle) // measuring idleness: nothing to wait for
	after, err := cpuTicks(d.Pid())
	if err != nil {
		return err
	}
	secs := float64(after-before) / 100 // USER_HZ
	fmt.Printf("%-34s %8.3f s over %s = %.3f%% of a core; target < 0.1%%\n", "berthd idle CPU", secs, idle, 100*secs/idle.Seconds())
	for _, id := range ids {
		d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
	}
	return nil
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		if x > m {
			m = x
		}
	}
	return m
}

// smapsRollup returns a process's RSS and PSS in MiB.
func smapsRollup(pid int) (rss, pss float64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "Rss:":
			rss = kb / 1024
		case "Pss:":
			pss = kb / 1024
		}
	}
	return rss, pss, nil
}

// cpuTicks is utime+stime of pid, in clock ticks.
func cpuTicks(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st, nil
}
