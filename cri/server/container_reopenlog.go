package server

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/shim"
)

// ReopenContainerLog has the pod's shim reopen a running container's log
// file at its path, after kubelet renamed the old one to rotate it. Lines
// written before the reopen are in the old file, later ones in the new;
// none is lost or split.
func (s *Service) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := s.runningContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if c.Meta.LogPath == "" {
		return nil, errdefs.FailedPrecondition("container %s has no log file", c.Meta.ID)
	}
	socket, err := s.shimSocketOf(c)
	if err != nil {
		return nil, err
	}
	if err := shim.ReopenLog(ctx, socket, c.Meta.ID); err != nil {
		return nil, fmt.Errorf("reopen log of container %s: %w", c.Meta.ID, err)
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
