package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/atomicfile"
	"github.com/berth-project/berth/cri/cgroup"
	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/image"
	"github.com/berth-project/berth/cri/oci"
	"github.com/berth-project/berth/cri/store"
)

// CreateContainer prepares a container in a ready sandbox: its rootfs
// (overlay over the image's layers), its OCI spec and its record. No
// process exists until StartContainer.
func (s *Service) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (_ *runtimeapi.CreateContainerResponse, err error) {
	cfg := req.GetConfig()
	if err := validateContainerConfig(cfg); err != nil {
		return nil, err
	}
	sb, err := s.store.Sandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	defer s.ops.lock(sandboxKey(sb.Meta.ID))()
	if _, err := s.store.Sandbox(sb.Meta.ID); err != nil {
		return nil, err // removed while we waited
	}
	sbStatus := sb.Status()
	if sbStatus.State != store.SandboxReady {
		return nil, errdefs.FailedPrecondition("sandbox %s is not ready (%s)", sb.Meta.ID, sbStatus.Reason)
	}
	img, err := s.images.Get(cfg.GetImage().GetImage())
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, errdefs.NotFound("image %q is not present on this node: import it with berthctl images import", cfg.GetImage().GetImage())
		}
		return nil, err
	}
	volImages, err := s.imageVolumeImages(cfg.GetMounts())
	if err != nil {
		return nil, err
	}
	logPath, err := containerLogPath(sb.Config().GetLogDirectory(), cfg.GetLogPath())
	if err != nil {
		return nil, err
	}
	stopSignal, err := containerStopSignal(cfg, img.Config)
	if err != nil {
		return nil, err
	}
	targetPID, err := s.targetPID(cfg)
	if err != nil {
		return nil, err
	}

	id := newID()
	key := store.ContainerNameKey(sb.Meta.ID, cfg.GetMetadata())
	if err := s.store.ReserveName(key, id); err != nil {
		return nil, fmt.Errorf("container %q in sandbox %s: %w", cfg.GetMetadata().GetName(), sb.Meta.ID, err)
	}
	var u undo
	defer func() { u.run(err) }()
	u.add(func(context.Context) { s.store.ReleaseName(key, id) })

	dir := s.store.ContainerDir(id)
	if err := mkdirTraversable(dir); err != nil {
		return nil, err
	}
	u.add(func(context.Context) { atomicfile.RemoveAll(dir) })
	rootfs, err := s.images.MountRootfs(img.ID, dir, rootfsIDMap(sb.Config(), sbStatus.Pid))
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	u.add(func(context.Context) { image.UnmountRootfs(dir) })
	u.add(func(context.Context) { unmountImageVolumes(dir) })
	imageVols, imageVolSources, err := s.mountImageVolumes(dir, cfg.GetMounts(), volImages)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	if logPath != "" {
		// A full log filesystem does not keep a container from running:
		// its shim makes the directory and the file once there is room.
		err := os.MkdirAll(filepath.Dir(logPath), 0o755)
		switch {
		case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
			s.log.Warn("container log directory: no space left; the log is written once there is", "container", id, "log", logPath, "err", err)
		case err != nil:
			return nil, fmt.Errorf("container %s: log directory: %w", id, err)
		}
	}

	cgroupsPath := s.cfg.CgroupDriver.Path(sb.Meta.CgroupParent, id)
	spec, err := oci.ContainerSpec(oci.ContainerInput{
		ID:              id,
		SandboxID:       sb.Meta.ID,
		Config:          cfg,
		Sandbox:         sb.Config(),
		Image:           img.Config,
		Rootfs:          rootfs,
		SandboxPID:      sbStatus.Pid,
		TargetPID:       targetPID,
		NetNSPath:       sb.Meta.NetNS,
		CgroupsPath:     cgroupsPath,
		CgroupNamespace: cgroup.Unified(),
		ResolvConf:      filepath.Join(sb.Dir, "resolv.conf"),
		Hosts:           filepath.Join(sb.Dir, "hosts"),
		HostnameFile:    filepath.Join(sb.Dir, "hostname"),
		ShmPath:         sb.Meta.ShmPath,
		MinOOMScoreAdj:  s.cfg.MinOOMScoreAdj,
		ImageVolumes:    imageVolSources,
	})
	if err != nil {
		return nil, err
	}

	meta := store.ContainerMeta{
		ID:          id,
		SandboxID:   sb.Meta.ID,
		ImageID:     img.ID,
		DiffIDs:     img.DiffIDs,
		CreatedAt:   time.Now().UnixNano(),
		LogPath:     logPath,
		StopSignal:  int(stopSignal),
		CgroupsPath: cgroupsPath,

		ImageVolumes: imageVols,
	}
	meta.Config.Msg = cfg
	// Plugins may adjust the spec, or veto the container, before anyone
	// can see it.
	unblockNRI := s.nri.Block()
	defer unblockNRI()
	pod := s.nriPod(sb)
	if err := s.nri.CreateContainer(ctx, pod, nriContainer(&meta, store.ContainerStatus{State: store.ContainerCreated}, spec), spec); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	if err := atomicfile.WriteJSON(filepath.Join(dir, "config.json"), spec); err != nil {
		return nil, err
	}
	if p := spec.Process; p != nil {
		meta.User = store.User{UID: p.User.UID, GID: p.User.GID, Groups: p.User.AdditionalGids}
	}
	c := store.NewContainer(dir, meta)
	if err := c.Commit(store.ContainerStatus{State: store.ContainerCreated}); err != nil {
		return nil, err
	}
	s.store.AddContainer(c)
	s.emitContainer(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, c)
	s.nriLog(id, s.nri.PostCreateContainer(ctx, pod, nriContainer(&c.Meta, c.Status(), spec)))
	s.log.Info("container created", "container", id, "name", cfg.GetMetadata().GetName(), "sandbox", sb.Meta.ID, "image", img.ID)
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// rootfsIDMap: in a pod with its own user namespace (hostUsers: false) the
// rootfs is shifted into the pause process's namespace, so that the image's
// root-owned files belong to the pod's root.
func rootfsIDMap(sb *runtimeapi.PodSandboxConfig, pausePID int) *image.IDMap {
	uid, gid, ok := podRoot(sb)
	if !ok {
		return nil
	}
	return &image.IDMap{UserNS: fmt.Sprintf("/proc/%d/ns/user", pausePID), UID: uid, GID: gid}
}

// containerStopSignal is the signal StopContainer sends first: the one the
// container config asks for (a pod's lifecycle.stopSignal), else the
// image's STOPSIGNAL, else SIGTERM.
func containerStopSignal(cfg *runtimeapi.ContainerConfig, imageCfg v1.Config) (syscall.Signal, error) {
	if s := cfg.GetStopSignal(); s != runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		sig, ok := oci.FromCRISignal(s)
		if !ok {
			return 0, errdefs.InvalidArgument("config.stop_signal %s is not a signal of this system", s)
		}
		return sig, nil
	}
	sig, err := oci.StopSignal(imageCfg)
	if err != nil {
		return 0, errdefs.InvalidArgument("image stop signal: %v", err)
	}
	return sig, nil
}

func validateContainerConfig(cfg *runtimeapi.ContainerConfig) error {
	switch {
	case cfg == nil:
		return errdefs.InvalidArgument("config is required")
	case cfg.GetMetadata().GetName() == "":
		return errdefs.InvalidArgument("config.metadata.name is required")
	case cfg.GetImage().GetImage() == "":
		return errdefs.InvalidArgument("config.image.image is required")
	}
	return checkContainerBounds(cfg)
}

// containerLogPath joins the sandbox's log directory and the container's
// relative log path, refusing paths that would escape the directory.
func containerLogPath(logDir, rel string) (string, error) {
	if logDir == "" || rel == "" {
		return "", nil
	}
	if filepath.IsAbs(rel) {
		return "", errdefs.InvalidArgument("config.log_path %q must be relative to the sandbox's log_directory", rel)
	}
	p := filepath.Join(logDir, rel)
	if !strings.HasPrefix(p, filepath.Clean(logDir)+string(filepath.Separator)) {
		return "", errdefs.InvalidArgument("config.log_path %q escapes the sandbox's log_directory", rel)
	}
	return p, nil
}

// targetPID is the pid whose PID namespace a TARGET-mode container joins.
func (s *Service) targetPID(cfg *runtimeapi.ContainerConfig) (int, error) {
	opts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if opts.GetPid() != runtimeapi.NamespaceMode_TARGET {
		return 0, nil
	}
	target, err := s.store.Container(opts.GetTargetId())
	if err != nil {
		return 0, fmt.Errorf("config.linux.security_context.namespace_options.target_id: %w", err)
	}
	st := target.Status()
	if st.State != store.ContainerRunning {
		return 0, errdefs.FailedPrecondition("target container %s is %s, not running", target.Meta.ID, st.State)
	}
	return st.Pid, nil
}
