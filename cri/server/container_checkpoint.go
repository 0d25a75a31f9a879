package server

import (
	"context"
	"os/exec"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
)

// CheckpointContainer is not supported: runc checkpoints through CRIU,
// and berth does not drive it (nor restore from an archive). The answer
// is Unimplemented, naming what is missing, for a container that exists.
func (s *Service) CheckpointContainer(ctx context.Context, req *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	c, err := s.store.Container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("criu"); err != nil {
		return nil, errdefs.Unimplemented("checkpoint container %s: checkpointing needs CRIU, which is not installed", c.Meta.ID)
	}
	return nil, errdefs.Unimplemented("checkpoint container %s: berth does not implement checkpointing (CRIU is installed, but berth does not drive it)", c.Meta.ID)
}
