package main

import (
	"context"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"
)

// opsBench measures, through the CRI socket, the operations
// `critest -benchmark` times, with p50/p90/p99 over samples runs, plus
// ListContainerStats over 100 containers and the exec round trip.
func opsBench(ctx context.Context, samples int) error {
	small, err := harness.BusyboxImage(v1.Config{Cmd: []string{"sh"}, Env: []string{"BENCH=pull"}})
	if err != nil {
		return err
	}
	return withRegistry(ctx, small, "bench/small:1", func(d *harness.Daemon, ref name.Reference) error {
		return opsFigures(ctx, d, ref.String(), samples)
	})
}

func opsFigures(ctx context.Context, d *harness.Daemon, pullRef string, samples int) error {
	if err := importBusybox(ctx, d); err != nil {
		return err
	}

	ops := map[string][]time.Duration{}
	timed := func(op string, f func() error) error {
		start := time.Now()
		err := f()
		ops[op] = append(ops[op], time.Since(start))
		return err
	}
	rt, im := d.Runtime, d.Images
	for i := range samples {
		pod := podConfig(d, fmt.Sprintf("ops-%d", i))
		var podID, ctrID string
		steps := []struct {
			op string
			f  func() error
		}{
			{"CreatePod", func() error {
				r, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
				podID = r.GetPodSandboxId()
				return err
			}},
			{"CreateContainer", func() error {
				r, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: containerConfig(), SandboxConfig: pod})
				ctrID = r.GetContainerId()
				return err
			}},
			{"StartContainer", func() error {
				_, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctrID})
				return err
			}},
			{"ExecSync round trip", func() error {
				_, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ctrID, Cmd: []string{"true"}, Timeout: 10})
				return err
			}},
			{"StopContainer", func() error {
				_, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: ctrID, Timeout: 0})
				return err
			}},
			{"RemoveContainer", func() error {
				_, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: ctrID})
				return err
			}},
			{"StopPod", func() error {
				_, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID})
				return err
			}},
			{"RemovePod", func() error {
				_, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID})
				return err
			}},
			{"PullImage", func() error {
				_, err := im.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: pullRef}})
				return err
			}},
			{"ListImages", func() error {
				_, err := im.ListImages(ctx, &runtimeapi.ListImagesRequest{})
				return err
			}},
		}
		for _, s := range steps {
			if err := timed(s.op, s.f); err != nil {
				return fmt.Errorf("%s: %w", s.op, err)
			}
		}
		// The next PullImage must fetch again.
		if _, err := im.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: pullRef}}); err != nil {
			return err
		}
	}
	fmt.Printf("CRI operations, %d samples each (p50 / p90 / p99)\n", samples)
	for _, op := range []string{"CreatePod", "StopPod", "RemovePod", "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer", "PullImage", "ListImages", "ExecSync round trip"} {
		xs := sorted(ops[op])
		fmt.Printf("%-34s %9s / %9s / %9s\n", op, round(pct(xs, 50)), round(pct(xs, 90)), round(pct(xs, 99)))
	}
	return statsCost(ctx, d, 100)
}

// statsCost times ListContainerStats with n running containers.
func statsCost(ctx context.Context, d *harness.Daemon, n int) error {
	var pods []string
	defer func() {
		for _, p := range pods {
			d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p})
		}
	}()
	const perPod = 5
	for i := 0; i < n/perPod; i++ {
		pod := podConfig(d, fmt.Sprintf("stats-%d", i))
		r, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
		if err != nil {
			return err
		}
		pods = append(pods, r.GetPodSandboxId())
		for j := range perPod {
			cfg := containerConfig()
			cfg.Metadata.Name = fmt.Sprintf("c%d", j)
			c, err := d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: r.GetPodSandboxId(), Config: cfg, SandboxConfig: pod})
			if err != nil {
				return err
			}
			if _, err := d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.GetContainerId()}); err != nil {
				return err
			}
		}
	}
	var xs []time.Duration
	for range 20 {
		start := time.Now()
		resp, err := d.Runtime.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
		if err != nil {
			return err
		}
		xs = append(xs, time.Since(start))
		if len(resp.GetStats()) < n {
			return fmt.Errorf("ListContainerStats returned %d containers, want %d", len(resp.GetStats()), n)
		}
	}
	xs = sorted(xs)
	fmt.Printf("%-34s %9s / %9s / %9s\n\n", fmt.Sprintf("ListContainerStats (%d ctrs)", n), round(pct(xs, 50)), round(pct(xs, 90)), round(pct(xs, 99)))
	return nil
}

// pct is the p-th percentile of sorted xs (nearest rank).
func pct(xs []time.Duration, p int) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	i := (len(xs)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return xs[i-1]
}
