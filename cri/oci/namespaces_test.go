package oci

import (
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
			nss, err := containerNamespaces(nsModes{network: tt.net, pid: tt.pid, ipc: tt.ipc}, tt.netns, 10, 20)
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
	_, err := containerNamespaces(nsModes{network: pod, pid: pod, ipc: pod}, "/run/netns/a", 0, 0)
	wantClass(t, err, errdefs.ErrFailedPrecondition, "sandbox")
	_, err = containerNamespaces(nsModes{network: pod, pid: container, ipc: pod}, "", 10, 0)
	wantClass(t, err, errdefs.ErrFailedPrecondition, "network namespace")
	_, err = containerNamespaces(nsModes{network: pod, pid: target, ipc: pod}, "/run/netns/a", 10, 0)
	wantInvalid(t, err, "target_id")
	_, err = containerNamespaces(nsModes{network: pod, pid: 9, ipc: pod}, "/run/netns/a", 10, 0)
	wantInvalid(t, err, "namespace_options.pid")
	// A fully host-namespaced container needs no sandbox process.
	if _, err := containerNamespaces(nsModes{network: node, pid: node, ipc: node}, "", 0, 0); err != nil {
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
			nss, err := sandboxNamespaces(nsModes{network: tt.net, pid: tt.pid, ipc: tt.ipc}, tt.netns)
			if err != nil {
				t.Fatal(err)
			}
			if got := nsList(nss); !slices.Equal(got, tt.want) {
				t.Errorf("namespaces = %v, want %v", got, tt.want)
			}
		})
	}
	_, err := sandboxNamespaces(nsModes{network: pod, pid: pod, ipc: pod}, "")
	wantClass(t, err, errdefs.ErrFailedPrecondition, "network namespace")
}

func idMap(containerID, hostID, length uint32) []*runtimeapi.IDMapping {
	return []*runtimeapi.IDMapping{{ContainerId: containerID, HostId: hostID, Length: length}}
}

func TestUserNamespaceOptions(t *testing.T) {
	valid := idMap(0, 100000, 65536)
	tests := []struct {
		name  string
		opts  *runtimeapi.NamespaceOption
		words []string // nil: accepted
	}{
		{"none is the node's", &runtimeapi.NamespaceOption{}, nil},
		{"node", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: node}}, nil},
		{"pod", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: pod, Uids: valid, Gids: valid}}, nil},
		{"node with mappings", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: node, Uids: valid, Gids: valid}},
			[]string{"userns_options", "NODE"}},
		{"container", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: container}},
			[]string{"userns_options", "CONTAINER"}},
		{"target", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: target}},
			[]string{"userns_options", "TARGET"}},
		{"two mappings", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: pod,
			Uids: append(idMap(0, 1000, 10), idMap(10, 5000, 10)...), Gids: valid}}, []string{"uids", "exactly one"}},
		{"no gid mapping", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: pod, Uids: valid}},
			[]string{"gids", "exactly one"}},
		{"root not mapped", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: pod,
			Uids: idMap(1, 1000, 10), Gids: valid}}, []string{"uids", "container ID 0"}},
		{"empty range", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: pod,
			Uids: valid, Gids: idMap(0, 1000, 0)}}, []string{"gids", "length 0"}},
		{"root to host root", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: pod,
			Uids: idMap(0, 0, 65536), Gids: valid}}, []string{"uids", "host ID 0"}},
		{"overflow", &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: pod,
			Uids: idMap(0, 1<<32-10, 100), Gids: valid}}, []string{"uids", "overflow"}},
		{"with host network", &runtimeapi.NamespaceOption{Network: node,
			UsernsOptions: &runtimeapi.UserNamespace{Mode: pod, Uids: valid, Gids: valid}}, []string{"node's network"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := modesOf(tt.opts)
			if tt.words == nil {
				if err != nil {
					t.Fatal(err)
				}
				u := tt.opts.GetUsernsOptions()
				if got, want := m.hostUsers(), u == nil || u.GetMode() != pod; got != want {
					t.Errorf("hostUsers = %v, want %v", got, want)
				}
				return
			}
			wantInvalid(t, err, tt.words...)
		})
	}
}

func TestUserNamespaceJoined(t *testing.T) {
	valid := idMap(0, 100000, 65536)
	m, err := modesOf(&runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: pod, Uids: valid, Gids: valid}})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandboxNamespaces(m, "/run/netns/a")
	if err != nil {
		t.Fatal(err)
	}
	if got := nsList(sb); !slices.Equal(got, []string{"ipc", "mount", "network=/run/netns/a", "pid", "user", "uts"}) {
		t.Errorf("sandbox namespaces = %v", got)
	}
	ctr, err := containerNamespaces(m, "/run/netns/a", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := nsList(ctr); !slices.Equal(got, []string{"ipc=/proc/10/ns/ipc", "mount", "network=/run/netns/a",
		"pid=/proc/10/ns/pid", "user=/proc/10/ns/user", "uts=/proc/10/ns/uts"}) {
		t.Errorf("container namespaces = %v", got)
	}
}
