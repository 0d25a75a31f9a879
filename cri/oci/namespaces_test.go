package oci

import (
	"errors"
	"slices"
	"testing"

	"github.com/berth-project/berth/cri/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	pod       = runtimeapi.NamespaceMode_POD
	container = runtimeapi.NamespaceMode_CONTAINER
	node      = runtimeapi.NamespaceMode_NODE
	target    = runtimeapi.NamespaceMode_TARGET
)

// nsList renders namespaces as "type=path" ("type" alone when new).
func nsList(nss []specs.LinuxNamespace) []string {
	var out []string
	for _, ns := range nss {
		s := string(ns.Type)
		if ns.Path != "" {
			s += "=" + ns.Path
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func TestContainerNamespaces(t *testing.T) {
	tests := []struct {
		name          string
		net, pid, ipc runtimeapi.NamespaceMode
		netns         string
		want          []string
	}{
		{"pod everything", pod, pod, pod, "/run/netns/a", []string{
			"ipc=/proc/10/ns/ipc", "mount", "network=/run/netns/a", "pid=/proc/10/ns/pid", "uts=/proc/10/ns/uts"}},
		{"own pid", pod, container, pod, "/run/netns/a", []string{
			"ipc=/proc/10/ns/ipc", "mount", "network=/run/netns/a", "pid", "uts=/proc/10/ns/uts"}},
		{"target pid", pod, target, pod, "/run/netns/a", []string{
			"ipc=/proc/10/ns/ipc", "mount", "network=/run/netns/a", "pid=/proc/20/ns/pid", "uts=/proc/10/ns/uts"}},
		{"host pid", pod, node, pod, "/run/netns/a", []string{
			"ipc=/proc/10/ns/ipc", "mount", "network=/run/netns/a", "uts=/proc/10/ns/uts"}},
		{"host network keeps host uts", node, container, pod, "", []string{
			"ipc=/proc/10/ns/ipc", "mount", "pid"}},
		{"host everything", node, node, node, "", []string{"mount"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nss, err := containerNamespaces(nsModes{tt.net, tt.pid, tt.ipc}, tt.netns, 10, 20)
			if err != nil {
				t.Fatal(err)
			}
			if got := nsList(nss); !slices.Equal(got, tt.want) {
				t.Errorf("namespaces = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestContainerNamespacesErrors(t *testing.T) {
	_, err := containerNamespaces(nsModes{pod, pod, pod}, "/run/netns/a", 0, 0)
	wantClass(t, err, errdefs.ErrFailedPrecondition, "sandbox")
	_, err = containerNamespaces(nsModes{pod, container, pod}, "", 10, 0)
	wantClass(t, err, errdefs.ErrFailedPrecondition, "network namespace")
	_, err = containerNamespaces(nsModes{pod, target, pod}, "/run/netns/a", 10, 0)
	wantInvalid(t, err, "target_id")
	_, err = containerNamespaces(nsModes{pod, 9, pod}, "/run/netns/a", 10, 0)
	wantInvalid(t, err, "namespace_options.pid")
	// A fully host-namespaced container needs no sandbox process.
	if _, err := containerNamespaces(nsModes{node, node, node}, "", 0, 0); err != nil {
		t.Errorf("host namespaces: %v", err)
	}
}

func TestSandboxNamespaces(t *testing.T) {
	tests := []struct {
		name          string
		net, pid, ipc runtimeapi.NamespaceMode
		netns         string
		want          []string
	}{
		{"pod", pod, pod, pod, "/run/netns/a", []string{"ipc", "mount", "network=/run/netns/a", "pid", "uts"}},
		{"container pid is still a new pid ns", pod, container, pod, "/run/netns/a",
			[]string{"ipc", "mount", "network=/run/netns/a", "pid", "uts"}},
		{"host network", node, pod, pod, "", []string{"ipc", "mount", "pid"}},
		{"host pid and ipc", pod, node, node, "/run/netns/a", []string{"mount", "network=/run/netns/a", "uts"}},
		{"host everything", node, node, node, "", []string{"mount"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nss, err := sandboxNamespaces(nsModes{tt.net, tt.pid, tt.ipc}, tt.netns)
			if err != nil {
				t.Fatal(err)
			}
			if got := nsList(nss); !slices.Equal(got, tt.want) {
				t.Errorf("namespaces = %v, want %v", got, tt.want)
			}
		})
	}
	_, err := sandboxNamespaces(nsModes{pod, pod, pod}, "")
	wantClass(t, err, errdefs.ErrFailedPrecondition, "network namespace")
}

func TestUserNamespacesRefused(t *testing.T) {
	opts := &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{
		Mode: pod, Uids: []*runtimeapi.IDMapping{{HostId: 100000, Length: 65536}},
	}}
	if _, err := modesOf(opts); !errors.Is(err, errdefs.ErrUnimplemented) {
		t.Errorf("userns: %v, want unimplemented", err)
	}
	opts.UsernsOptions.Mode = node
	if _, err := modesOf(opts); err != nil {
		t.Errorf("userns NODE: %v", err)
	}
}
