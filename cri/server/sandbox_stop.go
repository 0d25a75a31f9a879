package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/netns"
	"github.com/berth-project/berth/cri/shim"
	"github.com/berth-project/berth/cri/store"
)

// StopPodSandbox kills the pod's containers and pause process and releases
// its network (the IP lease), namespaces and shim. It is idempotent: an
// unknown or already stopped sandbox is success.
func (s *Service) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := s.store.Sandbox(req.GetPodSandboxId())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer s.ops.lock(sandboxKey(sb.Meta.ID))()
	if err := s.stopSandbox(ctx, sb); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// stopSandbox needs the sandbox's op lock.
func (s *Service) stopSandbox(ctx context.Context, sb *store.Sandbox) error {
	for _, c := range s.store.SandboxContainers(sb.Meta.ID) {
		unlock := s.ops.lock(containerKey(c.Meta.ID))
		err := s.stopContainer(ctx, c, 0)
		unlock()
		if err != nil {
			return fmt.Errorf("stop sandbox %s: %w", sb.Meta.ID, err)
		}
	}
	// Plugins hear of the stop with the workload stopped and the sandbox
	// still there.
	s.nriLog(sb.Meta.ID, s.nri.StopPodSandbox(ctx, s.nriPod(sb)))
	st := sb.Status()
	if st.Pid != 0 {
		if err := s.stopPause(ctx, sb.Meta.ID, st.Shim); err != nil {
			return err
		}
	}
	if !st.NetworkTornDown {
		if err := s.teardownNetwork(ctx, &sb.Meta); err != nil {
			return err
		}
	}
	if sb.Meta.ShmPath != "" {
		if err := unmountShm(sb.Meta.ShmPath); err != nil {
			return fmt.Errorf("stop sandbox %s: %w", sb.Meta.ID, err)
		}
	}
	stopShim(ctx, st.Shim)
	err := sb.Update(func(st *store.SandboxStatus) error {
		st.State = store.SandboxNotReady
		st.Pid = 0
		st.NetworkTornDown = true
		if st.Reason == "" {
			st.Reason = "stopped"
		}
		return nil
	})
	s.exits.settle(sb.Meta.ID) // the sandbox's STOPPED event is out
	if err == nil && st.State == store.SandboxReady {
		s.log.Info("sandbox stopped", "sandbox", sb.Meta.ID)
	}
	return err
}

// stopPause kills the pause process and removes its runc state; the pod's
// namespaces go with it.
func (s *Service) stopPause(ctx context.Context, id string, proc shim.Process) error {
	if err := s.cfg.Runc.Kill(ctx, id, syscall.SIGKILL, false); err != nil && !errors.Is(err, errdefs.ErrNotFound) && !errors.Is(err, errdefs.ErrFailedPrecondition) {
		return fmt.Errorf("stop sandbox %s: %w", id, err)
	}
	if proc.Alive() {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		shim.Wait(wctx, proc.Socket, id)
		cancel()
	}
	if err := s.cfg.Runc.Delete(ctx, id, true); err != nil {
		return fmt.Errorf("stop sandbox %s: %w", id, err)
	}
	return nil
}

// teardownNetwork detaches the pod from CNI (freeing its IP) and removes
// its network namespace. It is safe to repeat.
func (s *Service) teardownNetwork(ctx context.Context, meta *store.SandboxMeta) error {
	if meta.NetNS == "" {
		return nil
	}
	att := attachment(meta)
	if _, err := os.Stat(meta.NetNS); err != nil {
		att.NetNS = "" // CNI DEL without a netns still frees the lease
	}
	if err := s.network.Teardown(ctx, att); err != nil {
		return fmt.Errorf("stop sandbox %s: %w", meta.ID, err)
	}
	if err := netns.Remove(meta.NetNS); err != nil {
		return fmt.Errorf("stop sandbox %s: %w", meta.ID, err)
	}
	return nil
}
