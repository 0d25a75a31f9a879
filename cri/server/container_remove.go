package server

import (
	"context"
	"errors"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/atomicfile"
	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/image"
	"github.com/berth-project/berth/cri/shim"
	"github.com/berth-project/berth/cri/store"
)

// RemoveContainer kills the container if it runs and deletes it, its
// rootfs and its runc state. Removing an unknown container is success.
// The log file stays: it belongs to whoever chose its path.
func (s *Service) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := s.store.Container(req.GetContainerId())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer s.ops.lock(containerKey(c.Meta.ID))()
	if _, err := s.store.Container(c.Meta.ID); err != nil {
		return &runtimeapi.RemoveContainerResponse{}, nil // removed while we waited
	}
	if err := s.removeContainer(ctx, c); err != nil {
		return nil, err
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

// removeContainer needs the container's op lock.
func (s *Service) removeContainer(ctx context.Context, c *store.Container) error {
	id := c.Meta.ID
	if err := s.stopContainer(ctx, c, 0); err != nil {
		return err
	}
	if err := s.cfg.Runc.Delete(ctx, id, true); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if sb, err := s.store.Sandbox(c.Meta.SandboxID); err == nil && sb.Status().Shim.Alive() {
		shim.Forget(ctx, s.shimSocket(c.Meta.SandboxID), id) // only frees memory in the shim
	}
	if err := unmountImageVolumes(c.Dir); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if err := image.UnmountRootfs(c.Dir); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if err := atomicfile.RemoveAll(c.Dir); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	pod := s.nriPodOf(c.Meta.SandboxID)
	s.store.DeleteContainer(id)
	s.store.ReleaseName(store.ContainerNameKey(c.Meta.SandboxID, c.Config().GetMetadata()), id)
	s.emitContainer(runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, c)
	if s.anyImageGone(c.Meta) {
		// An image went while this container used it: its layers can go now.
		if err := s.images.Prune(s.layersInUse()); err != nil {
			s.log.Warn("prune image layers", "error", err)
		}
	}
	s.nriLog(id, s.nri.RemoveContainer(ctx, pod, nriContainer(&c.Meta, c.Status(), nil)))
	s.log.Info("container removed", "container", id)
	return nil
}

// anyImageGone tells whether the image of the container's rootfs or of one
// of its image volumes has been removed from the store.
func (s *Service) anyImageGone(meta store.ContainerMeta) bool {
	ids := []string{meta.ImageID}
	for _, v := range meta.ImageVolumes {
		ids = append(ids, v.ImageID)
	}
	for _, id := range ids {
		if _, err := s.images.Get(id); errors.Is(err, errdefs.ErrNotFound) {
			return true
		}
	}
	return false
}

// layersInUse are the diff IDs of every container's rootfs and image
// volume layers.
func (s *Service) layersInUse() map[string]bool {
	inUse := map[string]bool{}
	for _, c := range s.store.Containers() {
		for _, d := range c.Meta.DiffIDs {
			inUse[d] = true
		}
		for _, v := range c.Meta.ImageVolumes {
			for _, d := range v.DiffIDs {
				inUse[d] = true
			}
		}
	}
	return inUse
}
