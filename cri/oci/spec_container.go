package oci

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-project/berth/cri/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerInput is what ContainerSpec needs besides the CRI request: the
// image's config and where the caller put things on the host.
type ContainerInput struct {
	ID, SandboxID string
	Config        *runtimeapi.ContainerConfig
	Sandbox       *runtimeapi.PodSandboxConfig
	// Image is the image's config (Entrypoint, Cmd, Env, WorkingDir, User).
	Image v1.Config
	// Rootfs is the container's mounted root filesystem on the host. Its
	// /etc/passwd and /etc/group are read (confined to it) to resolve users.
	Rootfs string
	// SandboxPID is the pause process: the container joins its IPC and UTS
	// namespaces, and its PID namespace in PID mode POD.
	SandboxPID int
	// TargetPID is the target container's process for PID mode TARGET.
	TargetPID int
	// NetNSPath is the pod's network namespace; "" when network is NODE.
	NetNSPath   string
	CgroupsPath string
	// CgroupNamespace gives an unprivileged container a cgroup namespace
	// of its own, in which its cgroup is the root (on cgroup v2, where
	// containerd does so too).
	CgroupNamespace bool
	// Host files bound at /etc/resolv.conf, /etc/hosts, /etc/hostname and
	// /dev/shm ("" = none; for ShmPath: the host's /dev/shm when IPC is NODE).
	ResolvConf, Hosts, HostnameFile, ShmPath string
	// MinOOMScoreAdj is the lowest oom_score_adj the runtime may set.
	MinOOMScoreAdj int
	// ImageVolumes maps the index of each mount with image set to the
	// host directory to bind read-only there: the image mounted read-only,
	// or its sub path inside that mount.
	ImageVolumes map[int]string
}

// ContainerSpec builds the runc spec of a container from its CRI request.
// Bad requests are errdefs.InvalidArgument naming the field. It reads only
// the rootfs's passwd/group, a Localhost seccomp profile, the requested host
// devices and mount sources (and /dev when privileged).
func ContainerSpec(in ContainerInput) (*specs.Spec, error) {
	cfg := in.Config
	if cfg == nil {
		return nil, errdefs.InvalidArgument("container %s: config is missing", in.ID)
	}
	if in.Rootfs == "" {
		return nil, errdefs.InvalidArgument("container %s: rootfs is empty", in.ID)
	}
	sc := cfg.GetLinux().GetSecurityContext()
	privileged := sc.GetPrivileged()
	if privileged && !in.Sandbox.GetLinux().GetSecurityContext().GetPrivileged() {
		return nil, errdefs.InvalidArgument(
			"linux.security_context.privileged: the pod sandbox was not created privileged")
	}
	modes, err := containerModes(sc.GetNamespaceOptions(), in.Sandbox.GetLinux().GetSecurityContext().GetNamespaceOptions())
	if err != nil {
		return nil, err
	}

	spec := newSpec(in.Rootfs)
	spec.Root.Readonly = sc.GetReadonlyRootfs()
	spec.Annotations = containerAnnotations(cfg, in.SandboxID, in.Sandbox)
	spec.Linux.CgroupsPath = in.CgroupsPath
	if err := containerProcess(spec, in, modes); err != nil {
		return nil, err
	}
	if err := containerSecurity(spec, sc, privileged); err != nil {
		return nil, err
	}
	if spec.Linux.Namespaces, err = containerNamespaces(modes, in.NetNSPath, in.SandboxPID, in.TargetPID); err != nil {
		return nil, err
	}
	if in.CgroupNamespace && !privileged {
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	if err := containerMounts(spec, in, modes, privileged); err != nil {
		return nil, err
	}
	if err := containerDevices(spec, cfg.GetDevices(), privileged); err != nil {
		return nil, err
	}
	if err := applyResources(spec, cfg.GetLinux().GetResources(), in.MinOOMScoreAdj, "linux.resources"); err != nil {
		return nil, err
	}
	if spec.Linux.Resources.Pids == nil {
		// No task limit but the pod's: under the systemd driver a scope
		// would otherwise get systemd's DefaultTasksMax (15 % of the
		// kernel's), which no pod asked for.
		unlimited := int64(-1)
		spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &unlimited}
	}
	return spec, nil
}

// containerModes: a container's namespace options (the pod's when it has
// none), except that it always shares the pod's user namespace: options
// naming another one are refused rather than silently ignored.
func containerModes(own, pod *runtimeapi.NamespaceOption) (nsModes, error) {
	podModes, err := modesOf(pod)
	if err != nil {
		return nsModes{}, fmt.Errorf("sandbox: %w", err)
	}
	if own == nil {
		return podModes, nil
	}
	if u := own.GetUsernsOptions(); u != nil && !proto.Equal(u, pod.GetUsernsOptions()) {
		return nsModes{}, errdefs.InvalidArgument("%s: a container shares its pod's user namespace; "+
			"these options differ from the pod's", usernsField)
	}
	modes, err := modesOf(&runtimeapi.NamespaceOption{
		Network: own.GetNetwork(), Pid: own.GetPid(), Ipc: own.GetIpc(), TargetId: own.GetTargetId(),
		UsernsOptions: pod.GetUsernsOptions(),
	})
	if err != nil {
		return nsModes{}, err
	}
	return modes, nil
}

// containerProcess fills in what runs, as whom, where and with what
// environment.
func containerProcess(spec *specs.Spec, in ContainerInput, modes nsModes) error {
	p := spec.Process
	var err error
	if p.Args, err = processArgs(in.Config, in.Image); err != nil {
		return err
	}
	if p.Cwd, err = workingDir(in.Config, in.Image); err != nil {
		return err
	}
	sc := in.Config.GetLinux().GetSecurityContext()
	u, err := resolveUser(in.Rootfs, sc, in.Image.User)
	if err != nil {
		return err
	}
	// The primary group is among the process's groups too, as containerd
	// sets them: `id` shows it, and so does ContainerStatus.
	p.User = specs.User{UID: u.uid, GID: u.gid, AdditionalGids: append([]uint32{u.gid}, u.additional...)}
	hostname := in.Sandbox.GetHostname()
	if hostname == "" && modes.hostNetwork() {
		hostname, _ = os.Hostname()
	}
	if p.Env, err = processEnv(in.Config, in.Image, hostname, u.home); err != nil {
		return err
	}
	p.Terminal = in.Config.GetTty()
	p.NoNewPrivileges = sc.GetNoNewPrivs()
	return nil
}

// containerSecurity sets capabilities, seccomp and masked paths. Privileged
// means all the node can grant and no filter.
func containerSecurity(spec *specs.Spec, sc *runtimeapi.LinuxContainerSecurityContext, privileged bool) error {
	if privileged {
		spec.Process.Capabilities = privilegedCapabilities().toSpec()
		return nil
	}
	caps, err := resolveCapabilities(sc.GetCapabilities())
	if err != nil {
		return err
	}
	spec.Process.Capabilities = caps.toSpec()
	//lint:ignore SA1019 kubelets older than 1.25 still send only the path
	spec.Linux.Seccomp, err = seccompFor(sc.GetSeccomp(), sc.GetSeccompProfilePath(),
		"linux.security_context", caps.granted)
	if err != nil {
		return err
	}
	spec.Linux.MaskedPaths = pathsOr(sc.GetMaskedPaths(), defaultMaskedPaths)
	spec.Linux.ReadonlyPaths = pathsOr(sc.GetReadonlyPaths(), defaultReadonlyPaths)
	return nil
}

func containerMounts(spec *specs.Spec, in ContainerInput, modes nsModes, privileged bool) error {
	requested, rootProp, err := criMounts(in.Config.GetMounts(), in.ImageVolumes, filepath.EvalSymlinks)
	if err != nil {
		return err
	}
	files := hostFiles{
		resolvConf: in.ResolvConf, hosts: in.Hosts, hostname: in.HostnameFile,
		shm: in.ShmPath, hostIPC: modes.hostIPC(),
	}
	runtimeMounts := append(defaultMounts(privileged, modes.hostUsers()), fileMounts(files, spec.Root.Readonly)...)
	spec.Mounts = mergeMounts(runtimeMounts, requested)
	spec.Linux.RootfsPropagation = rootProp
	return nil
}

func containerDevices(spec *specs.Spec, reqs []*runtimeapi.Device, privileged bool) error {
	devs, rules, err := requestedDevices(reqs)
	if err != nil {
		return err
	}
	if privileged {
		spec.Linux.Devices = mergeDevices(devs, hostDevices("/dev"))
		spec.Linux.Resources.Devices = allowAllDevices()
		return nil
	}
	spec.Linux.Devices = devs
	spec.Linux.Resources.Devices = append(spec.Linux.Resources.Devices, rules...)
	return nil
}
