package server

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers lists containers, filtered by ID (or prefix), state,
// sandbox ID (or prefix) and labels.
func (s *Service) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListContainersResponse{}
	for _, c := range s.store.Containers() {
		if f.GetId() != "" && !strings.HasPrefix(c.Meta.ID, f.GetId()) {
			continue
		}
		if f.GetPodSandboxId() != "" && !strings.HasPrefix(c.Meta.SandboxID, f.GetPodSandboxId()) {
			continue
		}
		cfg := c.Config()
		if !matchLabels(cfg.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		state := containerState(s.containerStatus(ctx, c).State)
		if f.GetState() != nil && f.GetState().GetState() != state {
			continue
		}
		resp.Containers = append(resp.Containers, &runtimeapi.Container{
			Id:           c.Meta.ID,
			PodSandboxId: c.Meta.SandboxID,
			Metadata:     cfg.GetMetadata(),
			Image:        &runtimeapi.ImageSpec{Image: cfg.GetImage().GetImage()},
			ImageRef:     c.Meta.ImageID,
			ImageId:      c.Meta.ImageID,
			State:        state,
			CreatedAt:    c.Meta.CreatedAt,
			Labels:       cfg.GetLabels(),
			Annotations:  cfg.GetAnnotations(),
		})
	}
	if n := trimAnswer(resp, resp.Containers, (*runtimeapi.Container).GetAnnotations, func(c *runtimeapi.Container) { c.Annotations = nil }); n > 0 {
		s.log.Warn(trimmedNote("ListContainers", n))
	}
	return resp, nil
}
