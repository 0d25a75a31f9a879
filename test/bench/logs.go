package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"
)

// logLine is what the writer repeats: 100 bytes with its newline.
var logLine = strings.Repeat("x", 99)

// logBench measures container log throughput through the shim: a
// container writes size bytes of 100-byte lines to stdout as fast as it
// can, and the shim writes them as CRI records to a log rotated at
// kubelet's default 10 MiB (5 files). The floor is the same writer with
// its output redirected to a file on the same filesystem, no shim.
// Figures: MB/s and lines/s, and berthd + shim CPU per MB.
func logBench(ctx context.Context, size int64, samples int) error {
	d, err := startBenchDaemon(ctx)
	if err != nil {
		return err
	}
	defer d.Cleanup()
	writer := fmt.Sprintf("yes %s | head -c %d", logLine, size)
	fmt.Printf("container log throughput (%d MiB of 100-byte lines to stdout, medians of %d)\n", size>>20, samples)
	var shimTimes, floorTimes []time.Duration
	var cpu []float64
	for i := range samples + 1 {
		took, ticks, err := logRun(ctx, d, fmt.Sprintf("logs-%d", i), writer)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(d.LogDir, 0o755); err != nil {
			return err
		}
		out := filepath.Join(d.LogDir, "floor.out")
		began := time.Now()
		if b, err := exec.Command(harness.BusyboxBinary, "sh", "-c", writer+" > "+out).CombinedOutput(); err != nil {
			return fmt.Errorf("floor: %v: %s", err, b)
		}
		floor := time.Since(began)
		os.Remove(out)
		if i == 0 {
			continue // warm-up
		}
		shimTimes, floorTimes = append(shimTimes, took), append(floorTimes, floor)
		cpu = append(cpu, float64(ticks)*10/float64(size>>20)) // ms of CPU per MiB (USER_HZ 100)
	}
	mib := float64(size) / (1 << 20)
	lines := float64(size) / float64(len(logLine)+1)
	shim, floor := median(shimTimes), median(floorTimes)
	fmt.Printf("%-34s %8.1f MiB/s, %9.0f lines/s\n", "through berth-shim", mib/shim.Seconds(), lines/shim.Seconds())
	fmt.Printf("%-34s %8.1f MiB/s, %9.0f lines/s\n", "floor: cat > file", mib/floor.Seconds(), lines/floor.Seconds())
	fmt.Printf("%-34s %8.2fx of the floor's throughput\n", "ratio berth/floor", floor.Seconds()/shim.Seconds())
	fmt.Printf("%-34s %8.2f ms CPU per MiB (median)\n\n", "berthd + shim CPU", medianFloat(cpu))
	return nil
}

// logRun runs writer in a new pod's container and returns how long it
// took from its start to its exit, and the CPU ticks berthd and the pod's
// shim used meanwhile.
func logRun(ctx context.Context, d *harness.Daemon, name, writer string) (time.Duration, uint64, error) {
	pod := podConfig(d, name)
	sb, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err != nil {
		return 0, 0, err
	}
	defer d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.GetPodSandboxId()})
	cfg := containerConfig()
	cfg.Command = []string{"sh", "-c", writer}
	c, err := d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.GetPodSandboxId(), Config: cfg, SandboxConfig: pod})
	if err != nil {
		return 0, 0, err
	}
	st, err := d.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.GetPodSandboxId(), Verbose: true})
	if err != nil {
		return 0, 0, err
	}
	var info struct {
		ShimPid int `json:"shimPid"`
	}
	json.Unmarshal([]byte(st.GetInfo()["info"]), &info)
	berthBefore, _ := cpuTicks(d.Pid())
	shimBefore, _ := cpuTicks(info.ShimPid)
	began := time.Now()
	if _, err := d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.GetContainerId()}); err != nil {
		return 0, 0, err
	}
	for {
		resp, err := d.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.GetContainerId()})
		if err != nil {
			return 0, 0, err
		}
		if resp.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			if code := resp.GetStatus().GetExitCode(); code != 0 {
				return 0, 0, fmt.Errorf("log writer exited %d", code)
			}
			took := time.Unix(0, resp.GetStatus().GetFinishedAt()).Sub(began)
			berthAfter, _ := cpuTicks(d.Pid())
			shimAfter, _ := cpuTicks(info.ShimPid)
			return took, berthAfter - berthBefore + shimAfter - shimBefore, nil
		}
		time.Sleep(5 * time.Millisecond) // a benchmark's poll; the exit time comes from the status
	}
}

func medianFloat(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}
