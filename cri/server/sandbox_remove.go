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
	if err := cgroup.Remove(sb.Meta.CreatedCgroups); err != nil {
		s.log.Warn("sandbox cgroup parent left behind", "sandbox", sb.Meta.ID, "error", err)
	}
	if err := os.RemoveAll(s.sandboxStateDir(sb.Meta.ID)); err != nil {
		return nil, fmt.Errorf("remove sandbox %s: %w", sb.Meta.ID, err)
	}
	if err := atomicfile.RemoveAll(sb.Dir); err != nil {
		return nil, fmt.Errorf("remove sandbox %s: %w", sb.Meta.ID, err)
	}
	s.store.DeleteSandbox(sb.Meta.ID)
	s.store.ReleaseName(store.SandboxNameKey(sb.Config().GetMetadata()), sb.Meta.ID)
	s.log.Info("sandbox removed", "sandbox", sb.Meta.ID)
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}
