package oci

import (
	"math"

	"github.com/berth-project/berth/cri/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// SandboxInput is what SandboxSpec needs besides the CRI request.
type SandboxInput struct {
	ID     string
	Config *runtimeapi.PodSandboxConfig
	// Rootfs holds the built-in pause binary at /pause; it is mounted
	// read-only.
	Rootfs string
	// NetNSPath is the pod's network namespace; "" when network is NODE.
	NetNSPath   string
	CgroupsPath string
	// Host files bound at /etc/resolv.conf, /etc/hosts, /etc/hostname and
	// /dev/shm ("" = none; for ShmPath: the host's /dev/shm when IPC is NODE).
	ResolvConf, Hosts, HostnameFile, ShmPath string
	// MinOOMScoreAdj is the lowest oom_score_adj the runtime may set.
	MinOOMScoreAdj int
}

// pauseBinary is where the built-in pause program sits in its rootfs.
const pauseBinary = "/pause"

// SandboxSpec builds the runc spec of a pod's pause process: it owns the
// pod's IPC, UTS and PID namespaces (unless they are the node's), sits in
// the network namespace prepared for CNI, carries the pod's sysctls, holds
// no capabilities, and is the last thing the OOM killer picks. Bad requests
// are errdefs.InvalidArgument naming the field.
func SandboxSpec(in SandboxInput) (*specs.Spec, error) {
	cfg := in.Config
	if cfg == nil {
		return nil, errdefs.InvalidArgument("sandbox %s: config is missing", in.ID)
	}
	if in.Rootfs == "" {
		return nil, errdefs.InvalidArgument("sandbox %s: rootfs is empty", in.ID)
	}
	sc := cfg.GetLinux().GetSecurityContext()
	modes, err := modesOf(sc.GetNamespaceOptions())
	if err != nil {
		return nil, err
	}

	spec := newSpec(in.Rootfs)
	spec.Root.Readonly = true
	spec.Annotations = sandboxAnnotations(cfg, in.ID)
	spec.Linux.CgroupsPath = in.CgroupsPath
	if spec.Linux.Namespaces, err = sandboxNamespaces(modes, in.NetNSPath); err != nil {
		return nil, err
	}
	if !modes.hostNetwork() {
		// runc refuses a hostname without a UTS namespace of its own.
		spec.Hostname = cfg.GetHostname()
	}
	if spec.Linux.Sysctl, err = podSysctls(cfg.GetLinux().GetSysctls(), modes); err != nil {
		return nil, err
	}
	if err := sandboxProcess(spec, sc); err != nil {
		return nil, err
	}
	files := hostFiles{
		resolvConf: in.ResolvConf, hosts: in.Hosts, hostname: in.HostnameFile,
		shm: in.ShmPath, hostIPC: modes.hostIPC(),
	}
	if !modes.hostUsers() {
		spec.Linux.UIDMappings, spec.Linux.GIDMappings = modes.userns.uids, modes.userns.gids
	}
	spec.Mounts = append(defaultMounts(sc.GetPrivileged(), modes.hostUsers()), fileMounts(files, sc.GetReadonlyRootfs())...)

	// The pod's total resources bound the pause container too (overhead is
	// the caller's business); its OOM score is fixed.
	if err := applyResources(spec, cfg.GetLinux().GetResources(), in.MinOOMScoreAdj, "linux.resources"); err != nil {
		return nil, err
	}
	oom := clampOOMScoreAdj(sandboxOOMScoreAdj, in.MinOOMScoreAdj)
	spec.Process.OOMScoreAdj = &oom
	return spec, nil
}

// sandboxProcess: /pause as the requested user (numeric only: the pause
// rootfs has no passwd; run_as_group alone applies to root, since kubelet
// passes a pod's runAsGroup without its runAsUser), with no capabilities and
// the requested seccomp.
func sandboxProcess(spec *specs.Spec, sc *runtimeapi.LinuxSandboxSecurityContext) error {
	const field = "linux.security_context"
	p := spec.Process
	p.Args = []string{pauseBinary}
	p.Env = []string{defaultPath}
	p.NoNewPrivileges = true
	p.Capabilities = &specs.LinuxCapabilities{}
	if u := sc.GetRunAsUser(); u != nil {
		if u.GetValue() < 0 || u.GetValue() > math.MaxUint32 {
			return errdefs.InvalidArgument("%s.run_as_user: %d is out of range", field, u.GetValue())
		}
		p.User.UID = uint32(u.GetValue())
	}
	if g := sc.GetRunAsGroup(); g != nil {
		if g.GetValue() < 0 || g.GetValue() > math.MaxUint32 {
			return errdefs.InvalidArgument("%s.run_as_group: %d is out of range", field, g.GetValue())
		}
		p.User.GID = uint32(g.GetValue())
	}
	for i, g := range sc.GetSupplementalGroups() {
		if g < 0 || g > math.MaxUint32 {
			return errdefs.InvalidArgument("%s.supplemental_groups[%d]: %d is out of range", field, i, g)
		}
		p.User.AdditionalGids = appendGID(p.User.AdditionalGids, p.User.GID, uint32(g))
	}
	if sc.GetPrivileged() {
		return nil
	}
	var err error
	//lint:ignore SA1019 kubelets older than 1.25 still send only the path
	spec.Linux.Seccomp, err = seccompFor(sc.GetSeccomp(), sc.GetSeccompProfilePath(), field, nil)
	if err != nil {
		return err
	}
	spec.Linux.MaskedPaths = defaultMaskedPaths()
	spec.Linux.ReadonlyPaths = defaultReadonlyPaths()
	return nil
}
