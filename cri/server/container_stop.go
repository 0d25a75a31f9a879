package server

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/shim"
	"github.com/berth-project/berth/cri/store"
)

// killWait bounds the wait for a container to die after SIGKILL.
const killWait = 30 * time.Second

// StopContainer sends the image's stop signal (SIGTERM by default), waits
// up to the timeout, then kills. Stopping an unknown or stopped container
// is success.
func (s *Service) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := s.store.Container(req.GetContainerId())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer s.ops.lock(containerKey(c.Meta.ID))()
	if err := s.stopContainer(ctx, c, time.Duration(req.GetTimeout())*time.Second); err != nil {
		return nil, err
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// stopContainer needs the container's op lock. Once it succeeded, the
// container's STOPPED event is out.
func (s *Service) stopContainer(ctx context.Context, c *store.Container, grace time.Duration) (err error) {
	defer func() {
		if err == nil {
			s.exits.settle(c.Meta.ID)
		}
	}()
	st := s.containerStatus(ctx, c)
	if st.State != store.ContainerRunning {
		return nil
	}
	id := c.Meta.ID
	socket := s.shimSocket(c.Meta.SandboxID)
	if grace > 0 {
		sig := syscall.Signal(c.Meta.StopSignal)
		if sig == 0 {
			sig = syscall.SIGTERM
		}
		if err := s.signal(ctx, id, sig, false); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, grace)
		_, err := shim.Wait(wctx, socket, id)
		cancel()
		if err == nil {
			s.log.Info("container stopped", "container", id, "signal", sig)
			return nil
		}
	}
	if err := s.signal(ctx, id, syscall.SIGKILL, true); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, killWait)
	defer cancel()
	if _, err := shim.Wait(wctx, socket, id); err != nil {
		return fmt.Errorf("stop container %s: waiting for exit after SIGKILL: %w", id, err)
	}
	s.log.Info("container killed", "container", id)
	return nil
}

// signal signals a container; one that already stopped is not an error.
func (s *Service) signal(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	err := s.cfg.Runc.Kill(ctx, id, sig, all)
	if err == nil || errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrFailedPrecondition) {
		return nil
	}
	return fmt.Errorf("stop container %s: %w", id, err)
}

// containerStatus is the container's status with one more fact checked:
// a running container whose shim is gone can no longer be tracked. It is
// killed and reported exited with reason ShimLost, never silently lost.
func (s *Service) containerStatus(ctx context.Context, c *store.Container) store.ContainerStatus {
	st := c.Status()
	if st.State != store.ContainerRunning {
		return st
	}
	sb, err := s.store.Sandbox(c.Meta.SandboxID)
	if err == nil && sb.Status().Shim.Alive() {
		return st
	}
	s.cfg.Runc.Kill(ctx, c.Meta.ID, syscall.SIGKILL, true)
	err = c.Update(func(st *store.ContainerStatus) error {
		st.State = store.ContainerExited
		st.FinishedAt = time.Now().UnixNano()
		st.ExitCode = 128 + int32(syscall.SIGKILL)
		st.Reason = store.ReasonShimLost
		st.Message = "berth-shim of sandbox " + c.Meta.SandboxID + " exited unexpectedly; the container's exit could not be collected, so it was killed"
		return nil
	})
	if err != nil {
		s.log.Error("record lost container", "container", c.Meta.ID, "error", err)
	} else {
		s.log.Warn("container lost with its shim", "container", c.Meta.ID, "sandbox", c.Meta.SandboxID)
	}
	return c.Status()
}
