package oci

import (
	"encoding/json"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestContainerSpecBasics(t *testing.T) {
	in := containerInput(t, func(in *ContainerInput) {
		in.Image = v1.Config{Entrypoint: []string{"/entry"}, Cmd: []string{"x"}, Env: []string{"A=1"},
			WorkingDir: "/srv", User: "alice"}
		in.Config.Command = nil
		in.Config.Args = []string{"serve"}
		in.Config.Tty = true
		in.Config.Annotations = map[string]string{"k": "v"}
		in.ResolvConf, in.Hosts, in.HostnameFile, in.ShmPath = "/p/resolv", "/p/hosts", "/p/hostname", "/p/shm"
	})
	s := mustContainerSpec(t, in)
	if s.Version != specs.Version || s.Root.Path != in.Rootfs || s.Root.Readonly {
		t.Errorf("root = %+v, version %s", s.Root, s.Version)
	}
	p := s.Process
	if !slices.Equal(p.Args, []string{"/entry", "serve"}) || p.Cwd != "/srv" || !p.Terminal {
		t.Errorf("process = %+v", p)
	}
	if p.User.UID != 1000 || p.User.GID != 1000 || !slices.Equal(p.User.AdditionalGids, []uint32{1000, 10, 29}) {
		t.Errorf("user = %+v", p.User)
	}
	for _, kv := range []string{"A=1", "HOME=/home/alice", "HOSTNAME=pod-a", defaultPath} {
		if !slices.Contains(p.Env, kv) {
			t.Errorf("env %q lacks %s", p.Env, kv)
		}
	}
	if s.Hostname != "" {
		t.Errorf("hostname %q set on a container joining the sandbox's UTS namespace", s.Hostname)
	}
	if s.Annotations["k"] != "v" || s.Linux.CgroupsPath != "/kubepods/pod1/c1" {
		t.Errorf("annotations %v cgroups %s", s.Annotations, s.Linux.CgroupsPath)
	}
	if !slices.Equal(p.Capabilities.Bounding, DefaultCapabilities()) || len(p.Capabilities.Inheritable) != 0 {
		t.Errorf("capabilities = %+v", p.Capabilities)
	}
	if s.Linux.Seccomp != nil {
		t.Errorf("seccomp set though none was requested")
	}
	if !slices.Equal(s.Linux.MaskedPaths, defaultMaskedPaths()) || !slices.Equal(s.Linux.ReadonlyPaths, defaultReadonlyPaths()) {
		t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	for dst, src := range map[string]string{"/etc/resolv.conf": "/p/resolv", "/etc/hosts": "/p/hosts",
		"/etc/hostname": "/p/hostname", "/dev/shm": "/p/shm"} {
		if m, ok := findMount(s, dst); !ok || m.Source != src {
			t.Errorf("%s mount = %+v, want from %s", dst, m, src)
		}
	}
	if path, _ := nsPath(s, specs.UTSNamespace); path != "/proc/4242/ns/uts" {
		t.Errorf("uts = %q", path)
	}
	if len(p.Rlimits) != 1 || p.Rlimits[0].Type != "RLIMIT_NOFILE" {
		t.Errorf("rlimits = %+v", p.Rlimits)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Fatal(err)
	}
}

// The container's own mount at a runtime path replaces the runtime's.
func TestContainerSpecRequestedMountReplacesEtcFile(t *testing.T) {
	hosts := sharedDir(t)
	in := containerInput(t, func(in *ContainerInput) {
		in.Hosts = "/p/hosts"
		in.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/etc/hosts", HostPath: hosts, Readonly: true,
			Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}}
	})
	s := mustContainerSpec(t, in)
	n := 0
	for _, m := range s.Mounts {
		if m.Destination == "/etc/hosts" {
			n++
			if m.Source != hosts {
				t.Errorf("/etc/hosts from %s", m.Source)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d /etc/hosts mounts", n)
	}
	if s.Linux.RootfsPropagation != "rshared" {
		t.Errorf("rootfs propagation = %q", s.Linux.RootfsPropagation)
	}
}

func TestContainerSpecSecurity(t *testing.T) {
	in := containerInput(t, func(in *ContainerInput) {
		sc := secCtx(in)
		sc.ReadonlyRootfs = true
		sc.NoNewPrivs = true
		sc.MaskedPaths = []string{"/proc/x"}
		sc.ReadonlyPaths = []string{"/proc/y"}
		sc.Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"ALL"}, AddCapabilities: []string{"NET_BIND_SERVICE"}}
		sc.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
		in.Hosts = "/p/hosts"
	})
	s := mustContainerSpec(t, in)
	if !s.Root.Readonly || !s.Process.NoNewPrivileges {
		t.Errorf("readonly %v nnp %v", s.Root.Readonly, s.Process.NoNewPrivileges)
	}
	if !slices.Equal(s.Linux.MaskedPaths, []string{"/proc/x"}) || !slices.Equal(s.Linux.ReadonlyPaths, []string{"/proc/y"}) {
		t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if !slices.Equal(s.Process.Capabilities.Effective, []string{"CAP_NET_BIND_SERVICE"}) {
		t.Errorf("caps = %+v", s.Process.Capabilities)
	}
	if s.Linux.Seccomp == nil {
		t.Fatal("no seccomp for RuntimeDefault")
	}
	if act, _ := blockedBy(s.Linux.Seccomp, "mount"); act != specs.ActErrno {
		t.Error("RuntimeDefault does not block mount")
	}
	if m, _ := findMount(s, "/etc/hosts"); !slices.Contains(m.Options, "ro") {
		t.Errorf("/etc/hosts writable on a read-only rootfs: %v", m.Options)
	}
}

func TestContainerSpecSysAdminUnblocksMount(t *testing.T) {
	requireHostCaps(t, "CAP_SYS_ADMIN")
	in := containerInput(t, func(in *ContainerInput) {
		sc := secCtx(in)
		sc.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"SYS_ADMIN"}}
		//lint:ignore SA1019 the deprecated field is still supported
		sc.SeccompProfilePath = "runtime/default"
	})
	s := mustContainerSpec(t, in)
	if s.Linux.Seccomp == nil {
		t.Fatal("no seccomp for runtime/default")
	}
	for _, name := range []string{"mount", "umount2", "unshare", "setns"} {
		if act, _ := blockedBy(s.Linux.Seccomp, name); act != "" {
			t.Errorf("%s blocked despite CAP_SYS_ADMIN", name)
		}
	}
	if act, _ := blockedBy(s.Linux.Seccomp, "ptrace"); act == "" {
		t.Error("ptrace unblocked by CAP_SYS_ADMIN")
	}
}

func TestContainerSpecPrivileged(t *testing.T) {
	in := containerInput(t, privileged, func(in *ContainerInput) {
		sc := secCtx(in)
		sc.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
		sc.MaskedPaths = []string{"/proc/kcore"}
		sc.Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}
		in.Config.Devices = []*runtimeapi.Device{{HostPath: "/dev/null", ContainerPath: "/dev/extra-null"}}
	})
	s := mustContainerSpec(t, in)
	if s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("privileged still confined: seccomp %v masked %v ro %v",
			s.Linux.Seccomp != nil, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if !slices.Equal(s.Process.Capabilities.Bounding, availableCapabilities()) {
		t.Errorf("caps = %v, want all available", s.Process.Capabilities.Bounding)
	}
	if d := s.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow || d[0].Access != "rwm" || d[0].Major != nil {
		t.Errorf("device cgroup = %+v, want allow all", d)
	}
	paths := map[string]bool{}
	for _, d := range s.Linux.Devices {
		paths[d.Path] = true
	}
	if !paths["/dev/null"] || !paths["/dev/extra-null"] {
		t.Errorf("devices lack host /dev/null or the requested one: %d devices", len(s.Linux.Devices))
	}
	if m, _ := findMount(s, "/sys"); slices.Contains(m.Options, "ro") {
		t.Errorf("/sys read-only for a privileged container: %v", m.Options)
	}
}

func TestContainerSpecPrivilegedNeedsPrivilegedSandbox(t *testing.T) {
	in := containerInput(t, func(in *ContainerInput) { secCtx(in).Privileged = true })
	_, err := ContainerSpec(in)
	wantInvalid(t, err, "privileged", "sandbox")
}

func TestContainerSpecDevices(t *testing.T) {
	in := containerInput(t, func(in *ContainerInput) {
		in.Config.Devices = []*runtimeapi.Device{{HostPath: "/dev/null", ContainerPath: "/dev/n", Permissions: "r"}}
	})
	s := mustContainerSpec(t, in)
	if len(s.Linux.Devices) != 1 || s.Linux.Devices[0].Path != "/dev/n" {
		t.Errorf("devices = %+v", s.Linux.Devices)
	}
	rules := s.Linux.Resources.Devices
	if len(rules) != 2 || rules[0].Allow || !rules[1].Allow || rules[1].Access != "r" {
		t.Errorf("device rules = %+v, want deny all then allow /dev/null r", rules)
	}
}

func TestContainerSpecOOMClamp(t *testing.T) {
	in := containerInput(t, func(in *ContainerInput) {
		in.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{OomScoreAdj: -997, MemoryLimitInBytes: 1 << 26}
		in.MinOOMScoreAdj = 0
	})
	s := mustContainerSpec(t, in)
	if *s.Process.OOMScoreAdj != 0 || *s.Linux.Resources.Memory.Limit != 1<<26 {
		t.Errorf("oom %d memory %+v", *s.Process.OOMScoreAdj, s.Linux.Resources.Memory)
	}
}

func TestContainerSpecNamespacesFromSandbox(t *testing.T) {
	// No namespace options on the container: the sandbox's apply.
	in := containerInput(t, func(in *ContainerInput) {
		secCtx(in).NamespaceOptions = nil
		in.Sandbox.Linux.SecurityContext.NamespaceOptions = podNS(node, node, node)
		in.NetNSPath, in.SandboxPID = "", 0
	})
	s := mustContainerSpec(t, in)
	if got := nsList(s.Linux.Namespaces); !slices.Equal(got, []string{"mount"}) {
		t.Errorf("namespaces = %v", got)
	}
	if m, _ := findMount(s, "/dev/shm"); m.Source != "/dev/shm" {
		t.Errorf("/dev/shm = %+v, want the host's", m)
	}
}

func TestContainerSpecErrors(t *testing.T) {
	tests := []struct {
		name  string
		opt   func(*ContainerInput)
		words []string
	}{
		{"no config", func(in *ContainerInput) { in.Config = nil }, []string{"config"}},
		{"no command", func(in *ContainerInput) { in.Config.Command = nil }, []string{"no command specified"}},
		{"unknown user", func(in *ContainerInput) { secCtx(in).RunAsUsername = "zed" }, []string{"zed"}},
		{"bad mount", func(in *ContainerInput) {
			in.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "rel", HostPath: "/x"}}
		}, []string{"mounts[0].container_path"}},
		{"empty host path", func(in *ContainerInput) {
			in.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/x"}}
		}, []string{"mounts[0].host_path"}},
		{"bad device", func(in *ContainerInput) {
			in.Config.Devices = []*runtimeapi.Device{{HostPath: "/nonexistent/dev"}}
		}, []string{"devices[0].host_path"}},
		{"bad cap", func(in *ContainerInput) {
			secCtx(in).Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"MAGIC"}}
		}, []string{"MAGIC"}},
		{"missing seccomp file", func(in *ContainerInput) {
			secCtx(in).Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost,
				LocalhostRef: "/nonexistent/profile.json"}
		}, []string{"/nonexistent/profile.json"}},
		{"bad resources", func(in *ContainerInput) {
			in.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuShares: -2}
		}, []string{"linux.resources.cpu_shares"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ContainerSpec(containerInput(t, tt.opt))
			wantInvalid(t, err, tt.words...)
		})
	}
}

func TestContainerSpecUserNamespace(t *testing.T) {
	m := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 200000, Length: 65536}}
	userns := func() *runtimeapi.UserNamespace {
		return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m}
	}
	withPodUserns := func(in *ContainerInput) {
		in.Sandbox.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{UsernsOptions: userns()}
	}
	// Options without userns (or the pod's own) join the pod's namespace.
	for name, own := range map[string]*runtimeapi.UserNamespace{"none": nil, "the pod's": userns()} {
		s := mustContainerSpec(t, containerInput(t, withPodUserns, func(in *ContainerInput) {
			secCtx(in).NamespaceOptions.UsernsOptions = own
		}))
		if !slices.Contains(nsList(s.Linux.Namespaces), "user=/proc/4242/ns/user") {
			t.Errorf("%s: namespaces = %v, want the pause process's user namespace", name, nsList(s.Linux.Namespaces))
		}
		if len(s.Linux.UIDMappings) != 0 {
			t.Errorf("%s: mappings %v on a joined user namespace", name, s.Linux.UIDMappings)
		}
		if m, _ := findMount(s, "/sys"); m.Type != "bind" {
			t.Errorf("%s: /sys = %+v, want a bind", name, m)
		}
	}
	// Any other user namespace is refused.
	_, err := ContainerSpec(containerInput(t, withPodUserns, func(in *ContainerInput) {
		secCtx(in).NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
	}))
	wantInvalid(t, err, "userns_options", "pod's")
}

func TestContainerSpecIDMappedMount(t *testing.T) {
	src := t.TempDir()
	s := mustContainerSpec(t, containerInput(t, func(in *ContainerInput) {
		in.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src,
			UidMappings: []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 1000, Length: 10}},
			GidMappings: []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 2000, Length: 10}}}}
	}))
	m, _ := findMount(s, "/data")
	if !slices.Equal(m.UIDMappings, []specs.LinuxIDMapping{{HostID: 1000, Size: 10}}) ||
		!slices.Equal(m.GIDMappings, []specs.LinuxIDMapping{{HostID: 2000, Size: 10}}) {
		t.Errorf("/data = %+v", m)
	}
	_, err := ContainerSpec(containerInput(t, func(in *ContainerInput) {
		in.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src,
			UidMappings: []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 1000, Length: 10}}}}
	}))
	wantInvalid(t, err, "mounts[0]", "gid_mappings")
}

// TestContainerSpecCgroupNamespaceAndPids: on cgroup v2 an unprivileged
// container gets a cgroup namespace, a privileged one keeps the node's;
// neither gets a task limit it did not ask for (a systemd scope would
// otherwise get systemd's DefaultTasksMax).
func TestContainerSpecCgroupNamespaceAndPids(t *testing.T) {
	cgroupNS := func(in *ContainerInput) { in.CgroupNamespace = true }
	s := mustContainerSpec(t, containerInput(t, cgroupNS))
	if !slices.Contains(nsList(s.Linux.Namespaces), "cgroup") {
		t.Errorf("unprivileged on cgroup v2: namespaces %v, want a cgroup namespace", nsList(s.Linux.Namespaces))
	}
	if p := s.Linux.Resources.Pids; p == nil || p.Limit == nil || *p.Limit != -1 {
		t.Errorf("pids = %+v, want limit -1 (none)", p)
	}
	s = mustContainerSpec(t, containerInput(t, privileged, cgroupNS))
	if slices.Contains(nsList(s.Linux.Namespaces), "cgroup") {
		t.Errorf("privileged: namespaces %v, want the node's cgroup namespace", nsList(s.Linux.Namespaces))
	}
	s = mustContainerSpec(t, containerInput(t))
	if slices.Contains(nsList(s.Linux.Namespaces), "cgroup") {
		t.Errorf("cgroup v1: namespaces %v, want no cgroup namespace", nsList(s.Linux.Namespaces))
	}
}
