package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/testutil"
)

var seq atomic.Int64

type podOpt func(*runtimeapi.PodSandboxConfig)

// podConfig is a sandbox config with a unique name and UID.
func (e *env) podConfig(name string, opts ...podOpt) *runtimeapi.PodSandboxConfig {
	n := seq.Add(1)
	uid := fmt.Sprintf("uid-%s-%d", name, n)
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: uid},
		Hostname:     name,
		LogDirectory: filepath.Join(e.d.LogDir, "e2e_"+name+"_"+uid),
		Labels:       map[string]string{"app": name},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{}}},
	}
	for _, o := range opts {
		o(cfg)
	}
	return cfg
}

func withHostNetwork() podOpt {
	return func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	}
}

func withPodPID() podOpt {
	return func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	}
}

type ctrOpt func(*runtimeapi.ContainerConfig)

// containerConfig runs cmd in the busybox image, logging to <name>/0.log.
func containerConfig(name string, cmd []string, opts ...ctrOpt) *runtimeapi.ContainerConfig {
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: busybox},
		Command:  cmd,
		LogPath:  name + "/0.log",
		Labels:   map[string]string{"container": name},
		Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{}, Resources: &runtimeapi.LinuxContainerResources{}},
	}
	for _, o := range opts {
		o(cfg)
	}
	return cfg
}

func withMemoryLimit(bytes int64) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) { c.Linux.Resources.MemoryLimitInBytes = bytes }
}

// runPod starts a sandbox and returns its ID.
func (e *env) runPod(cfg *runtimeapi.PodSandboxConfig) string {
	e.t.Helper()
	resp, err := e.rt.RunPodSandbox(ctx(e.t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		e.t.Fatalf("RunPodSandbox: %v", err)
	}
	return resp.GetPodSandboxId()
}

// create creates a container and returns its ID.
func (e *env) create(podID string, podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	e.t.Helper()
	resp, err := e.rt.CreateContainer(ctx(e.t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: podCfg})
	if err != nil {
		e.t.Fatalf("CreateContainer %s: %v", cfg.GetMetadata().GetName(), err)
	}
	return resp.GetContainerId()
}

// start creates and starts a container.
func (e *env) start(podID string, podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	e.t.Helper()
	id := e.create(podID, podCfg, cfg)
	if _, err := e.rt.StartContainer(ctx(e.t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		e.t.Fatalf("StartContainer %s: %v", cfg.GetMetadata().GetName(), err)
	}
	return id
}

func (e *env) status(id string) *runtimeapi.ContainerStatus {
	e.t.Helper()
	resp, err := e.rt.ContainerStatus(ctx(e.t), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		e.t.Fatalf("ContainerStatus %s: %v", id, err)
	}
	return resp.GetStatus()
}

func (e *env) podStatus(id string) *runtimeapi.PodSandboxStatus {
	e.t.Helper()
	resp, err := e.rt.PodSandboxStatus(ctx(e.t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		e.t.Fatalf("PodSandboxStatus %s: %v", id, err)
	}
	return resp.GetStatus()
}

// waitExited waits for a container to exit and returns its status.
func (e *env) waitExited(id string) *runtimeapi.ContainerStatus {
	e.t.Helper()
	var st *runtimeapi.ContainerStatus
	testutil.Eventually(e.t, "container "+id+" to exit", func() bool {
		st = e.status(id)
		return st.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED
	})
	return st
}

// exec runs a command in a container and returns stdout, stderr, exit code.
func (e *env) exec(id string, cmd ...string) (string, string, int32) {
	e.t.Helper()
	resp, err := e.rt.ExecSync(ctx(e.t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 30})
	if err != nil {
		e.t.Fatalf("ExecSync %v in %s: %v", cmd, id, err)
	}
	return string(resp.GetStdout()), string(resp.GetStderr()), resp.GetExitCode()
}

// removePod stops and removes a sandbox.
func (e *env) removePod(id string) {
	e.t.Helper()
	c := context.Background()
	if _, err := e.rt.StopPodSandbox(c, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		e.t.Fatalf("StopPodSandbox: %v", err)
	}
	if _, err := e.rt.RemovePodSandbox(c, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		e.t.Fatalf("RemovePodSandbox: %v", err)
	}
}

var _ = testing.Verbose

// withPodLabels replaces the pod's labels.
func withPodLabels(labels map[string]string) podOpt {
	return func(c *runtimeapi.PodSandboxConfig) { c.Labels = labels }
}

// withDNSConfig gives the pod its resolv.conf settings.
func withDNSConfig(servers, searches, options []string) podOpt {
	return func(c *runtimeapi.PodSandboxConfig) {
		c.DnsConfig = &runtimeapi.DNSConfig{Servers: servers, Searches: searches, Options: options}
	}
}

// withPodSysctls sets the pod's namespaced sysctls.
func withPodSysctls(sysctls map[string]string) podOpt {
	return func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = sysctls }
}

// withCgroupParent puts the pod's cgroups below parent.
func withCgroupParent(parent string) podOpt {
	return func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = parent }
}

// Options for security_test.go and resources_test.go.

func withPrivilegedPod() podOpt {
	return func(c *runtimeapi.PodSandboxConfig) { c.Linux.SecurityContext.Privileged = true }
}

func withImage(ref string) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) { c.Image = &runtimeapi.ImageSpec{Image: ref} }
}

func withArgs(args ...string) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) { c.Args = args }
}

// withEnv adds one variable to the request's environment.
func withEnv(key, value string) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) {
		c.Envs = append(c.Envs, &runtimeapi.KeyValue{Key: key, Value: []byte(value)})
	}
}

func withWorkingDir(dir string) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) { c.WorkingDir = dir }
}

func withRunAsUser(uid int64) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) {
		c.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: uid}
	}
}

func withRunAsGroup(gid int64) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) {
		c.Linux.SecurityContext.RunAsGroup = &runtimeapi.Int64Value{Value: gid}
	}
}

func withSupplementalGroups(gids ...int64) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) { c.Linux.SecurityContext.SupplementalGroups = gids }
}

// withMount binds a host path into the container, privately.
func withMount(hostPath, containerPath string, readonly bool) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) {
		c.Mounts = append(c.Mounts, &runtimeapi.Mount{HostPath: hostPath, ContainerPath: containerPath, Readonly: readonly})
	}
}

func withDevice(hostPath, containerPath, permissions string) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) {
		c.Devices = append(c.Devices, &runtimeapi.Device{HostPath: hostPath, ContainerPath: containerPath, Permissions: permissions})
	}
}

func withCPU(shares, quota, period int64) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) {
		c.Linux.Resources.CpuShares, c.Linux.Resources.CpuQuota, c.Linux.Resources.CpuPeriod = shares, quota, period
	}
}

func withCpusetCpus(cpus string) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) { c.Linux.Resources.CpusetCpus = cpus }
}

func withOOMScoreAdj(v int64) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) { c.Linux.Resources.OomScoreAdj = v }
}

func withCapabilities(add, drop []string) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) {
		c.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{AddCapabilities: add, DropCapabilities: drop}
	}
}

// withPrivileged needs a pod made withPrivilegedPod.
func withPrivileged() ctrOpt {
	return func(c *runtimeapi.ContainerConfig) { c.Linux.SecurityContext.Privileged = true }
}

func withReadonlyRootfs() ctrOpt {
	return func(c *runtimeapi.ContainerConfig) { c.Linux.SecurityContext.ReadonlyRootfs = true }
}

func withNoNewPrivs() ctrOpt {
	return func(c *runtimeapi.ContainerConfig) { c.Linux.SecurityContext.NoNewPrivs = true }
}

// withSeccomp sets the typed seccomp profile; ref is for Localhost only.
func withSeccomp(typ runtimeapi.SecurityProfile_ProfileType, ref string) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) {
		c.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: typ, LocalhostRef: ref}
	}
}

// withContainerPID gives the container its own PID namespace, as kubelet
// does unless the pod shares its processes: its command is PID 1.
func withContainerPID() ctrOpt {
	return func(c *runtimeapi.ContainerConfig) {
		c.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}
	}
}

// withPodPrivatePID gives each container of the pod its own PID namespace,
// as kubelet asks for pods that do not set shareProcessNamespace.
func withPodPrivatePID() podOpt {
	return func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_CONTAINER
	}
}
