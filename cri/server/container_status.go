package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/oci"
	"github.com/berth-project/berth/cri/store"
)

// ContainerStatus reports a container's state, times, exit and config.
func (s *Service) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.store.Container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	st := s.containerStatus(ctx, c)
	resp := &runtimeapi.ContainerStatusResponse{Status: s.criContainerStatus(c, st)}
	if req.GetVerbose() {
		var spec any
		if data, err := os.ReadFile(filepath.Join(c.Dir, "config.json")); err == nil {
			json.Unmarshal(data, &spec)
		}
		pid := st.Pid
		if st.State != store.ContainerRunning {
			pid = 0 // as containerd: an exited process's PID may be anyone's by now
		}
		// containerd's shape, which tools read (config for env and
		// mounts, runtimeSpec for what runc was given).
		info, _ := json.Marshal(map[string]any{
			"sandboxID":      c.Meta.SandboxID,
			"pid":            pid,
			"cgroupsPath":    c.Meta.CgroupsPath,
			"bundle":         c.Dir,
			"runtimeType":    runtimeType,
			"runtimeOptions": s.runtimeOptions(),
			"config":         c.Config(),
			"runtimeSpec":    spec,
		})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// criContainerStatus is the CRI view of container c in status st.
func (s *Service) criContainerStatus(c *store.Container, st store.ContainerStatus) *runtimeapi.ContainerStatus {
	cfg := c.Config()
	// Like containerd: name the image by its first tag and its first repo
	// digest when the store still knows it, else as the container asked.
	imageSpec := &runtimeapi.ImageSpec{Image: cfg.GetImage().GetImage(), Annotations: cfg.GetImage().GetAnnotations()}
	imageRef := c.Meta.ImageID
	if img, err := s.images.Get(c.Meta.ImageID); err == nil {
		if len(img.RepoTags) > 0 {
			imageSpec = &runtimeapi.ImageSpec{Image: img.RepoTags[0], Annotations: cfg.GetImage().GetAnnotations()}
		}
		if len(img.RepoDigests) > 0 {
			imageRef = img.RepoDigests[0]
		}
	}
	// The process's groups, as `id -G` shows them: the primary one first.
	groups := []int64{int64(c.Meta.User.GID)}
	for _, g := range c.Meta.User.Groups {
		if g != c.Meta.User.GID {
			groups = append(groups, int64(g))
		}
	}
	return &runtimeapi.ContainerStatus{
		Id:          c.Meta.ID,
		Metadata:    cfg.GetMetadata(),
		State:       containerState(st.State),
		CreatedAt:   c.Meta.CreatedAt,
		StartedAt:   st.StartedAt,
		FinishedAt:  st.FinishedAt,
		ExitCode:    st.ExitCode,
		Image:       imageSpec,
		ImageRef:    imageRef,
		ImageId:     c.Meta.ImageID,
		Reason:      st.Reason,
		Message:     st.Message,
		Labels:      cfg.GetLabels(),
		Annotations: cfg.GetAnnotations(),
		Mounts:      criMountsStatus(cfg.GetMounts(), c.Meta.ImageVolumes),
		LogPath:     c.Meta.LogPath,
		Resources:   &runtimeapi.ContainerResources{Linux: s.containerResources(c)},
		User: &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{
			Uid: int64(c.Meta.User.UID), Gid: int64(c.Meta.User.GID), SupplementalGroups: groups,
		}},
		StopSignal: oci.CRISignal(syscall.Signal(c.Meta.StopSignal)),
	}
}

func containerState(s store.ContainerState) runtimeapi.ContainerState {
	switch s {
	case store.ContainerCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case store.ContainerRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case store.ContainerExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}
