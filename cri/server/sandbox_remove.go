package server

import (
	"context"
	"errors"
	"fmt"
	"os"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/atomicfile"
	"github.com/berth-project/berth/cri/cgroup"
	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/store"
)

// RemovePodSandbox stops the sandbox if needed, removes its containers and
// deletes every trace of it. Removing an unknown sandbox is success.
func (s *Service) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, err := s.store.Sandbox(req.GetPodSandboxId())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer s.ops.lock(sandboxKey(sb.Meta.ID))()
	if _, err := s.store.Sandbox(sb.Meta.ID); err != nil {
		return &runtimeapi.RemovePodSandboxResponse{}, nil // removed while we waited
	}
	if err := s.stopSandbox(ctx, sb); err != nil {
		return nil, err
	}
	for _, c := range s.store.SandboxContainers(sb.Meta.ID) {
		unlock := s.ops.lock(containerKey(c.Meta.ID))
		err := s.removeContainer(ctx, c)
		unlock()
		if err != nil {
			return nil, fmt.Errorf("remove sandbox %s: %w", sb.Meta.ID, err)
		}
	}
	if err := os.RemoveAll(s.sandboxStateDir(sb.Meta.ID)); err != nil {
		return nil, fmt.Errorf("remove sandbox %s: %w", sb.Meta.ID, err)
	}
	if err := atomicfile.RemoveAll(sb.Dir); err != nil {
		return nil, fmt.Errorf("remove sandbox %s: %w", sb.Meta.ID, err)
	}
	pod := s.nriPod(sb)
	s.store.DeleteSandbox(sb.Meta.ID)
	s.store.ReleaseName(store.SandboxNameKey(sb.Config().GetMetadata()), sb.Meta.ID)
	s.emitSandbox(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, sb)
	s.sweepCgroupParents(sb.Meta.ID)
	s.nriLog(sb.Meta.ID, s.nri.RemovePodSandbox(ctx, pod))
	s.log.Info("sandbox removed", "sandbox", sb.Meta.ID)
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// recordCgroupParent notes the parts of a pod's cgroup parent that do not
// exist yet: runc will create them, and berth must remove them once no pod
// uses them. With the systemd driver, systemd owns the slices.
func (s *Service) recordCgroupParent(parent string) error {
	if s.cfg.CgroupDriver != cgroup.Cgroupfs {
		return nil
	}
	if err := s.cgroups.Add(s.cfg.CgroupDriver.Missing(parent)); err != nil {
		return fmt.Errorf("record cgroup parent %s: %w", parent, err)
	}
	return nil
}

// sweepCgroupParents removes the parents berth created that no sandbox
// but the one going (except) uses any more.
func (s *Service) sweepCgroupParents(except string) {
	var inUse []string
	for _, sb := range s.store.Sandboxes() {
		if sb.Meta.ID != except {
			inUse = append(inUse, s.cfg.CgroupDriver.Dir(sb.Meta.CgroupParent))
		}
	}
	if err := s.cgroups.Sweep(inUse); err != nil {
		s.log.Warn("cgroup parents left behind", "error", err)
	}
}
