package oci

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/cri/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:1001::/home/bob:/bin/sh
broken line
nohome:x:1002:1002
`

const testGroup = `root:x:0:
daemon:x:1:
alice:x:1000:
bob:x:1001:
wheel:x:10:alice,bob
audio:x:29:alice
video:x:44: bob
`

// writeRootfs makes a rootfs with the given /etc files ("" = absent).
func writeRootfs(t *testing.T, passwd, group string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "rootfs")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"passwd": passwd, "group": group} {
		if content == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// podNS is a namespace option with the given modes.
func podNS(network, pid, ipc runtimeapi.NamespaceMode) *runtimeapi.NamespaceOption {
	return &runtimeapi.NamespaceOption{Network: network, Pid: pid, Ipc: ipc}
}

// containerInput is a valid, unprivileged input in a pod-networked sandbox;
// opts adjust it.
func containerInput(t *testing.T, opts ...func(*ContainerInput)) ContainerInput {
	t.Helper()
	in := ContainerInput{
		ID: "c1",
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Command:  []string{"/bin/app"},
			Linux: &runtimeapi.LinuxContainerConfig{
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					NamespaceOptions: podNS(runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER,
						runtimeapi.NamespaceMode_POD),
				},
			},
		},
		Sandbox: &runtimeapi.PodSandboxConfig{
			Hostname: "pod-a",
			Linux:    &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{}},
		},
		Rootfs:         writeRootfs(t, testPasswd, testGroup),
		SandboxPID:     4242,
		NetNSPath:      "/var/run/netns/cni-1",
		CgroupsPath:    "/kubepods/pod1/c1",
		MinOOMScoreAdj: -1000,
	}
	for _, o := range opts {
		o(&in)
	}
	return in
}

func secCtx(in *ContainerInput) *runtimeapi.LinuxContainerSecurityContext {
	return in.Config.Linux.SecurityContext
}

func privileged(in *ContainerInput) {
	secCtx(in).Privileged = true
	in.Sandbox.Linux.SecurityContext.Privileged = true
}

func mustContainerSpec(t *testing.T, in ContainerInput) *specs.Spec {
	t.Helper()
	s, err := ContainerSpec(in)
	if err != nil {
		t.Fatalf("ContainerSpec: %v", err)
	}
	return s
}

// wantInvalid checks err is an InvalidArgument whose message mentions each
// of the given words.
func wantInvalid(t *testing.T, err error, words ...string) {
	t.Helper()
	wantClass(t, err, errdefs.ErrInvalidArgument, words...)
}

func wantClass(t *testing.T, err, class error, words ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", class)
	}
	if !errors.Is(err, class) {
		t.Fatalf("error %q is not %v", err, class)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func findMount(s *specs.Spec, dst string) (specs.Mount, bool) {
	i := slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == dst })
	if i < 0 {
		return specs.Mount{}, false
	}
	return s.Mounts[i], true
}

func nsPath(s *specs.Spec, typ specs.LinuxNamespaceType) (path string, present bool) {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == typ {
			return ns.Path, true
		}
	}
	return "", false
}

// blockedBy returns the action and errno the profile applies to an
// argument-less call of name, or "" when only the default applies.
func blockedBy(p *specs.LinuxSeccomp, name string) (specs.LinuxSeccompAction, uint) {
	for _, r := range p.Syscalls {
		if len(r.Args) == 0 && slices.Contains(r.Names, name) {
			var errno uint
			if r.ErrnoRet != nil {
				errno = *r.ErrnoRet
			}
			return r.Action, errno
		}
	}
	return "", 0
}
