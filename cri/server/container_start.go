package server

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/shim"
	"github.com/berth-project/berth/cri/store"
)

// startErrorExitCode is what a container that never ran reports, as
// containerd does.
const startErrorExitCode = 128

// StartContainer has the pod's shim create and start the container's
// process through runc.
func (s *Service) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.store.Container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	id := c.Meta.ID
	defer s.ops.lock(sandboxKey(c.Meta.SandboxID))()
	defer s.ops.lock(containerKey(id))()
	if _, err := s.store.Container(id); err != nil {
		return nil, err // removed while we waited
	}
	if st := c.Status(); st.State != store.ContainerCreated {
		return nil, errdefs.FailedPrecondition("container %s is %s, only a created container can be started", id, st.State)
	}
	sb, err := s.store.Sandbox(c.Meta.SandboxID)
	if err != nil {
		return nil, err
	}
	sbStatus := sb.Status()
	if sbStatus.State != store.SandboxReady {
		return nil, errdefs.FailedPrecondition("sandbox %s of container %s is not ready (%s)", sb.Meta.ID, id, sbStatus.Reason)
	}
	pod := s.nriPod(sb)
	if err := s.nri.StartContainer(ctx, pod, nriContainer(&c.Meta, c.Status(), nil)); err != nil {
		return nil, fmt.Errorf("start container %s: %w", id, err)
	}
	cfg := c.Config()
	pid, err := shim.Run(ctx, sbStatus.Shim.Socket, shim.Request{
		ID:          id,
		Bundle:      c.Dir,
		LogPath:     c.Meta.LogPath,
		LogMaxSize:  s.cfg.LogMaxSize,
		LogMaxFiles: s.cfg.LogMaxFiles,
		ExitFile:    filepath.Join(c.Dir, store.ExitFile),
		OOMFiles:    s.cfg.CgroupDriver.OOMFiles(c.Meta.CgroupsPath),
		Stdin:       cfg.GetStdin(),
		StdinOnce:   cfg.GetStdinOnce(),
		Tty:         cfg.GetTty(),
	})
	if err != nil {
		cctx, cancel := cleanupContext()
		defer cancel()
		s.cfg.Runc.Delete(cctx, id, true)
		c.Update(func(st *store.ContainerStatus) error {
			st.State = store.ContainerExited
			st.FinishedAt = time.Now().UnixNano()
			st.ExitCode = startErrorExitCode
			st.Reason = store.ReasonStartError
			st.Message = err.Error()
			return nil
		})
		s.emitContainer(runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, c)
		return nil, fmt.Errorf("start container %s: %w", id, err)
	}
	if err := c.Update(func(st *store.ContainerStatus) error {
		st.State = store.ContainerRunning
		st.Pid = pid
		st.StartedAt = time.Now().UnixNano()
		return nil
	}); err != nil {
		return nil, err
	}
	s.emitContainer(runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, c)
	s.watchContainer(c) // publishes STOPPED when it exits
	s.nriLog(id, s.nri.PostStartContainer(ctx, pod, nriContainer(&c.Meta, c.Status(), nil)))
	s.log.Info("container started", "container", id, "pid", pid)
	return &runtimeapi.StartContainerResponse{}, nil
}
