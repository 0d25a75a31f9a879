package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/atomicfile"
	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/netns"
	"github.com/berth-project/berth/cri/network"
	"github.com/berth-project/berth/cri/oci"
	"github.com/berth-project/berth/cri/shim"
	"github.com/berth-project/berth/cri/store"
)

// shmSize is the size of a pod's /dev/shm, as containerd and docker give.
const shmSize = 64 << 20

// RunPodSandbox sets up a pod's namespaces, network, files and cgroup,
// starts its shim and its pause process, and records it. On any failure
// everything done so far is undone.
func (s *Service) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (_ *runtimeapi.RunPodSandboxResponse, err error) {
	cfg := req.GetConfig()
	if err := validateSandboxConfig(cfg); err != nil {
		return nil, err
	}
	if h := req.GetRuntimeHandler(); h != "" && h != "runc" {
		return nil, errdefs.InvalidArgument("runtime_handler %q is not configured (berth knows \"runc\")", h)
	}
	if _, _, ok := podRoot(cfg); ok {
		if err := s.checkTraversable(); err != nil {
			return nil, err
		}
	}
	parent := cfg.GetLinux().GetCgroupParent()
	if parent == "" {
		parent = s.cfg.CgroupDriver.DefaultParent()
	}
	if err := s.cfg.CgroupDriver.CheckParent(parent); err != nil {
		return nil, err
	}

	id := newID()
	key := store.SandboxNameKey(cfg.GetMetadata())
	if err := s.store.ReserveName(key, id); err != nil {
		return nil, fmt.Errorf("sandbox %s/%s: %w", cfg.GetMetadata().GetNamespace(), cfg.GetMetadata().GetName(), err)
	}
	var u undo
	defer func() { u.run(err) }()
	u.add(func(context.Context) { s.store.ReleaseName(key, id) })

	dir := s.store.SandboxDir(id)
	stateDir := s.sandboxStateDir(id)
	for _, d := range []string{dir, stateDir} {
		if err := mkdirTraversable(d); err != nil {
			return nil, err
		}
	}
	u.add(func(context.Context) { atomicfile.RemoveAll(dir); os.RemoveAll(stateDir) })

	meta := store.SandboxMeta{
		ID:             id,
		RuntimeHandler: req.GetRuntimeHandler(),
		CreatedAt:      time.Now().UnixNano(),
		CgroupParent:   parent,
	}
	if err := s.recordCgroupParent(parent); err != nil {
		return nil, err
	}
	u.add(func(context.Context) { s.sweepCgroupParents(id) })
	meta.Config.Msg = cfg
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	hostNetwork := nsOpts.GetNetwork() == runtimeapi.NamespaceMode_NODE

	var ips []string
	if !hostNetwork {
		res, err := s.setupNetwork(ctx, &meta, &u)
		if err != nil {
			return nil, err
		}
		ips = res.IPs
		if err := atomicfile.WriteJSON(filepath.Join(dir, cniResultFile), res.CNI); err != nil {
			return nil, err
		}
	}
	files, err := writeSandboxFiles(dir, cfg, hostNetwork, ips)
	if err != nil {
		return nil, err
	}
	if nsOpts.GetIpc() != runtimeapi.NamespaceMode_NODE {
		shm := filepath.Join(stateDir, "shm")
		if err := mountShm(shm); err != nil {
			return nil, err
		}
		u.add(func(context.Context) { unmountShm(shm) })
		meta.ShmPath = shm
	}

	spec, err := oci.SandboxSpec(oci.SandboxInput{
		ID:             id,
		Config:         cfg,
		Rootfs:         s.pause,
		NetNSPath:      meta.NetNS,
		CgroupsPath:    s.cfg.CgroupDriver.Path(parent, id),
		ResolvConf:     files.resolvConf,
		Hosts:          files.hosts,
		HostnameFile:   files.hostname,
		ShmPath:        meta.ShmPath,
		MinOOMScoreAdj: s.cfg.MinOOMScoreAdj,
	})
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteJSON(filepath.Join(dir, "config.json"), spec); err != nil {
		return nil, err
	}

	proc, err := shim.Launch(ctx, shim.LaunchConfig{
		Binary:        s.cfg.ShimBinary,
		Socket:        s.shimSocket(id),
		LogFile:       filepath.Join(stateDir, "shim.log"),
		RuncBinary:    s.cfg.Runc.Binary,
		RuncRoot:      s.cfg.Runc.Root,
		SystemdCgroup: s.cfg.Runc.SystemdCgroup,
		Scope:         s.shimScope(id),
	})
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, err)
	}
	u.add(func(ctx context.Context) { stopShim(ctx, proc) })

	pid, err := shim.Run(ctx, proc.Socket, shim.Request{
		ID:       id,
		Bundle:   dir,
		ExitFile: filepath.Join(dir, store.ExitFile),
	})
	u.add(func(ctx context.Context) { s.cfg.Runc.Delete(ctx, id, true) })
	if err != nil {
		return nil, fmt.Errorf("start pause container of sandbox %s: %w", id, err)
	}

	sb := store.NewSandbox(dir, meta)
	if err := sb.Commit(store.SandboxStatus{State: store.SandboxReady, Pid: pid, Shim: proc, IPs: ips}); err != nil {
		return nil, err
	}
	// Plugins see the sandbox before anyone else can; one may veto it.
	unblockNRI := s.nri.Block()
	defer unblockNRI()
	if err := s.nri.RunPodSandbox(ctx, s.nriPod(sb)); err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, err)
	}
	unlock := s.ops.lock(sandboxKey(id)) // a stop must find the watcher
	s.store.AddSandbox(sb)
	s.emitSandbox(runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, sb)
	s.emitSandbox(runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, sb)
	s.watchSandbox(sb) // publishes STOPPED when the pause process exits
	unlock()
	s.log.Info("sandbox ready", "sandbox", id, "pod", cfg.GetMetadata().GetNamespace()+"/"+cfg.GetMetadata().GetName(), "ips", ips)
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// setupNetwork creates the pod's network namespace and attaches it to the
// pod network, registering the undo steps.
func (s *Service) setupNetwork(ctx context.Context, meta *store.SandboxMeta, u *undo) (network.Result, error) {
	if err := s.network.Ready(); err != nil {
		return network.Result{}, errdefs.FailedPrecondition("pod network is not ready: %v", err)
	}
	path, err := netns.New(filepath.Join(s.cfg.State, "netns"), meta.ID)
	if err != nil {
		return network.Result{}, fmt.Errorf("sandbox %s: %w", meta.ID, err)
	}
	u.add(func(context.Context) { netns.Remove(path) })
	meta.NetNS = path
	att := attachment(meta)
	res, err := s.network.Setup(ctx, att)
	if err != nil {
		return network.Result{}, fmt.Errorf("sandbox %s: %w", meta.ID, err)
	}
	u.add(func(ctx context.Context) { s.network.Teardown(ctx, att) })
	return res, nil
}

// checkTraversable: the root of a pod with its own user namespace is an
// unprivileged host user, and runc, acting as it, must walk down to the
// pod's rootfs and files below --root and --state. A directory above them
// that others may not search (a 0700 temporary directory, say) fails deep in
// runc with a bare "permission denied"; this names it instead.
func (s *Service) checkTraversable() error {
	for _, dir := range []string{s.cfg.Root, s.cfg.State} {
		for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err != nil {
				return err
			}
			if fi.Mode().Perm()&0o001 == 0 {
				return errdefs.FailedPrecondition("user namespaces need %s to be searchable by other users "+
					"(mode %v; chmod o+x), since the pod's root is an unprivileged host user", d, fi.Mode().Perm())
			}
			if d == "/" {
				break
			}
		}
	}
	return nil
}

func validateSandboxConfig(cfg *runtimeapi.PodSandboxConfig) error {
	if cfg == nil {
		return errdefs.InvalidArgument("config is required")
	}
	md := cfg.GetMetadata()
	switch {
	case md == nil:
		return errdefs.InvalidArgument("config.metadata is required")
	case md.GetName() == "":
		return errdefs.InvalidArgument("config.metadata.name is required")
	case md.GetNamespace() == "":
		return errdefs.InvalidArgument("config.metadata.namespace is required")
	case md.GetUid() == "":
		return errdefs.InvalidArgument("config.metadata.uid is required")
	}
	if d := cfg.GetLogDirectory(); d != "" && !filepath.IsAbs(d) {
		return errdefs.InvalidArgument("config.log_directory %q must be absolute", d)
	}
	return checkSandboxBounds(cfg)
}

func (s *Service) sandboxStateDir(id string) string {
	return filepath.Join(s.cfg.State, "sandboxes", id)
}

func (s *Service) shimSocket(id string) string {
	return filepath.Join(s.cfg.State, "shims", id+".sock")
}

func mountShm(path string) error {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return err
	}
	opts := fmt.Sprintf("mode=1777,size=%d", shmSize)
	if err := unix.Mount("shm", path, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("mount /dev/shm for sandbox: %w", err)
	}
	return nil
}

func unmountShm(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL && !os.IsNotExist(err) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// stopShim asks a shim to exit, and kills it if it does not answer.
func stopShim(ctx context.Context, proc shim.Process) {
	if !proc.Alive() {
		if proc.Socket != "" {
			os.Remove(proc.Socket) // a lost shim leaves its socket behind
		}
		return
	}
	if err := stopShimAt(ctx, proc.Socket); err != nil {
		unix.Kill(proc.Pid, unix.SIGKILL)
	}
}

// stopShimAt asks whatever shim listens on socket to exit.
func stopShimAt(ctx context.Context, socket string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := shim.Shutdown(ctx, socket)
	os.Remove(socket)
	return err
}

// shimScope is the systemd scope of a sandbox's shim, if shims get one.
func (s *Service) shimScope(id string) string {
	if !s.cfg.ShimScopes {
		return ""
	}
	return "berth-shim-" + id + ".scope"
}
