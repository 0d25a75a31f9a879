package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"
)

// berthRun times pod starts through the CRI.
type berthRun struct {
	d                          *harness.Daemon
	runp, create, start, total []time.Duration
	teardown                   []time.Duration
	lastPod, lastCtr           string
}

func podConfig(d *harness.Daemon, name string) *runtimeapi.PodSandboxConfig {
	uid := name + "-" + fmt.Sprint(time.Now().UnixNano())
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "bench", Uid: uid},
		Hostname:     name,
		LogDirectory: filepath.Join(d.LogDir, uid),
		// As kubelet sends it for a pod without shareProcessNamespace.
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}
}

func containerConfig() *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
		Image:    &runtimeapi.ImageSpec{Image: image},
		Command:  []string{"sleep", "3600"},
		LogPath:  "app/0.log",
	}
}

func (b *berthRun) iteration(ctx context.Context, i int, keep bool) error {
	pod := podConfig(b.d, fmt.Sprintf("bench-%d", i))
	t0 := time.Now()
	sb, err := b.d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err != nil {
		return err
	}
	t1 := time.Now()
	c, err := b.d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.GetPodSandboxId(), Config: containerConfig(), SandboxConfig: pod})
	if err != nil {
		return err
	}
	t2 := time.Now()
	if _, err := b.d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.GetContainerId()}); err != nil {
		return err
	}
	t3 := time.Now()
	b.runp = append(b.runp, t1.Sub(t0))
	b.create = append(b.create, t2.Sub(t1))
	b.start = append(b.start, t3.Sub(t2))
	b.total = append(b.total, t3.Sub(t0))
	b.lastPod, b.lastCtr = sb.GetPodSandboxId(), c.GetContainerId()
	if keep {
		return nil
	}
	t4 := time.Now()
	if _, err := b.d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.GetPodSandboxId()}); err != nil {
		return err
	}
	if _, err := b.d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.GetPodSandboxId()}); err != nil {
		return err
	}
	b.teardown = append(b.teardown, time.Since(t4))
	return nil
}

// drop forgets iteration i (the warm-up).
func (b *berthRun) drop(i int) {
	b.runp = append(b.runp[:i], b.runp[i+1:]...)
	b.create = append(b.create[:i], b.create[i+1:]...)
	b.start = append(b.start[:i], b.start[i+1:]...)
	b.total = append(b.total[:i], b.total[i+1:]...)
}
