package oci

import (
	"encoding/json"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func sandboxInput(opts ...func(*SandboxInput)) SandboxInput {
	in := SandboxInput{
		ID: "s1",
		Config: &runtimeapi.PodSandboxConfig{
			Hostname:    "pod-a",
			Annotations: map[string]string{"a": "b"},
			Linux: &runtimeapi.LinuxPodSandboxConfig{
				SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: podNS(pod, container, pod)},
				Sysctls:         map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"},
			},
		},
		Rootfs:         "/var/lib/berth/pause",
		NetNSPath:      "/var/run/netns/cni-1",
		CgroupsPath:    "/kubepods/pod1/s1",
		ShmPath:        "/run/berth/s1/shm",
		ResolvConf:     "/run/berth/s1/resolv.conf",
		MinOOMScoreAdj: -1000,
	}
	for _, o := range opts {
		o(&in)
	}
	return in
}

func TestSandboxSpec(t *testing.T) {
	s, err := SandboxSpec(sandboxInput())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Process.Args, []string{"/pause"}) || !s.Root.Readonly || s.Root.Path != "/var/lib/berth/pause" {
		t.Errorf("process %v root %+v", s.Process.Args, s.Root)
	}
	if s.Hostname != "pod-a" {
		t.Errorf("hostname = %q", s.Hostname)
	}
	if got := nsList(s.Linux.Namespaces); !slices.Equal(got,
		[]string{"ipc", "mount", "network=/var/run/netns/cni-1", "pid", "uts"}) {
		t.Errorf("namespaces = %v", got)
	}
	if s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" {
		t.Errorf("sysctls = %v", s.Linux.Sysctl)
	}
	if *s.Process.OOMScoreAdj != -998 {
		t.Errorf("oom = %d", *s.Process.OOMScoreAdj)
	}
	c := s.Process.Capabilities
	if c == nil || len(c.Bounding)+len(c.Effective)+len(c.Permitted)+len(c.Inheritable)+len(c.Ambient) != 0 {
		t.Errorf("pause holds capabilities: %+v", c)
	}
	if s.Linux.Seccomp != nil || s.Linux.CgroupsPath != "/kubepods/pod1/s1" || s.Annotations["a"] != "b" {
		t.Errorf("seccomp %v cgroups %q annotations %v", s.Linux.Seccomp, s.Linux.CgroupsPath, s.Annotations)
	}
	if m, ok := findMount(s, "/dev/shm"); !ok || m.Source != "/run/berth/s1/shm" {
		t.Errorf("/dev/shm = %+v", m)
	}
	if m, ok := findMount(s, "/etc/resolv.conf"); !ok || m.Source != "/run/berth/s1/resolv.conf" {
		t.Errorf("/etc/resolv.conf = %+v", m)
	}
	if _, ok := findMount(s, "/etc/hosts"); ok {
		t.Error("/etc/hosts mounted though not given")
	}
	if len(s.Linux.MaskedPaths) == 0 || s.Process.User.UID != 0 {
		t.Errorf("masked %v user %+v", s.Linux.MaskedPaths, s.Process.User)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Fatal(err)
	}
}

func TestSandboxSpecHostNamespaces(t *testing.T) {
	s, err := SandboxSpec(sandboxInput(func(in *SandboxInput) {
		in.Config.Linux.SecurityContext.NamespaceOptions = podNS(node, node, node)
		in.Config.Linux.Sysctls = nil
		in.NetNSPath, in.ShmPath = "", ""
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := nsList(s.Linux.Namespaces); !slices.Equal(got, []string{"mount"}) {
		t.Errorf("namespaces = %v", got)
	}
	if s.Hostname != "" {
		t.Errorf("hostname %q set without a UTS namespace", s.Hostname)
	}
	if m, _ := findMount(s, "/dev/shm"); m.Source != "/dev/shm" || m.Type != "bind" {
		t.Errorf("/dev/shm = %+v, want the host's", m)
	}
}

func TestSandboxSpecSecurity(t *testing.T) {
	s, err := SandboxSpec(sandboxInput(func(in *SandboxInput) {
		sc := in.Config.Linux.SecurityContext
		sc.RunAsUser = &runtimeapi.Int64Value{Value: 65535}
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: 65534}
		sc.SupplementalGroups = []int64{5, 65534}
		sc.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
		in.MinOOMScoreAdj = -100
		in.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuShares: 2, OomScoreAdj: 1000}
	}))
	if err != nil {
		t.Fatal(err)
	}
	u := s.Process.User
	if u.UID != 65535 || u.GID != 65534 || !slices.Equal(u.AdditionalGids, []uint32{5}) {
		t.Errorf("user = %+v", u)
	}
	if s.Linux.Seccomp == nil {
		t.Fatal("no seccomp")
	}
	if act, _ := blockedBy(s.Linux.Seccomp, "mount"); act != specs.ActErrno {
		t.Error("mount not blocked for the pause process")
	}
	if *s.Process.OOMScoreAdj != -100 {
		t.Errorf("oom = %d, want -998 clamped to -100", *s.Process.OOMScoreAdj)
	}
	if *s.Linux.Resources.CPU.Shares != 2 {
		t.Errorf("cpu = %+v", s.Linux.Resources.CPU)
	}

	s, err = SandboxSpec(sandboxInput(func(in *SandboxInput) {
		in.Config.Linux.SecurityContext.Privileged = true
		//lint:ignore SA1019 the deprecated field is still supported
		in.Config.Linux.SecurityContext.SeccompProfilePath = "runtime/default"
	}))
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 {
		t.Errorf("privileged sandbox confined")
	}
	if m, _ := findMount(s, "/sys"); slices.Contains(m.Options, "ro") {
		t.Errorf("/sys read-only in a privileged sandbox")
	}
}

func TestSandboxSpecErrors(t *testing.T) {
	tests := []struct {
		name  string
		opt   func(*SandboxInput)
		words []string
	}{
		{"no config", func(in *SandboxInput) { in.Config = nil }, []string{"config"}},
		{"net sysctl with host network", func(in *SandboxInput) {
			in.Config.Linux.SecurityContext.NamespaceOptions = podNS(node, pod, pod)
			in.NetNSPath = ""
		}, []string{"net.ipv4.ip_unprivileged_port_start"}},
		{"bad seccomp path", func(in *SandboxInput) {
			//lint:ignore SA1019 the deprecated field is still supported
			in.Config.Linux.SecurityContext.SeccompProfilePath = "localhost/nope.json"
		}, []string{"seccomp_profile_path"}},
		{"bad user", func(in *SandboxInput) {
			in.Config.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: -3}
		}, []string{"run_as_user"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SandboxSpec(sandboxInput(tt.opt))
			wantInvalid(t, err, tt.words...)
		})
	}
}

func TestSandboxSpecUserNamespace(t *testing.T) {
	m := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 200000, Length: 65536}}
	s, err := SandboxSpec(sandboxInput(func(in *SandboxInput) {
		in.Config.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: pod, Uids: m, Gids: m}
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	if !slices.Equal(s.Linux.UIDMappings, want) || !slices.Equal(s.Linux.GIDMappings, want) {
		t.Errorf("mappings uid %v gid %v, want %v", s.Linux.UIDMappings, s.Linux.GIDMappings, want)
	}
	if !slices.Contains(nsList(s.Linux.Namespaces), "user") {
		t.Errorf("namespaces = %v, want a new user namespace", nsList(s.Linux.Namespaces))
	}
	// sysfs cannot be mounted from a user namespace that does not own the
	// network namespace: the node's /sys is bound read-only instead.
	if m, _ := findMount(s, "/sys"); m.Type != "bind" || m.Source != "/sys" || !slices.Contains(m.Options, "ro") {
		t.Errorf("/sys = %+v, want a read-only bind of the node's", m)
	}
}
