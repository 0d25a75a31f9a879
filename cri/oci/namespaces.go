package oci

import (
	"fmt"

	"github.com/berth-project/berth/cri/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nsModes are the namespace modes of a sandbox or container; a nil option
// means POD for all, as the CRI defines. userns holds the pod's ID mappings
// when it has a user namespace of its own (hostUsers: false); nil means the
// node's.
type nsModes struct {
	network, pid, ipc runtimeapi.NamespaceMode
	userns            *userMappings
}

// userMappings are a pod user namespace's ID mappings.
type userMappings struct {
	uids, gids []specs.LinuxIDMapping
}

const usernsField = "linux.security_context.namespace_options.userns_options"

func modesOf(opts *runtimeapi.NamespaceOption) (nsModes, error) {
	m := nsModes{network: opts.GetNetwork(), pid: opts.GetPid(), ipc: opts.GetIpc()}
	u := opts.GetUsernsOptions()
	if u == nil { // no options: the node's user namespace (POD is mode 0)
		return m, nil
	}
	switch u.GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		if len(u.GetUids()) > 0 || len(u.GetGids()) > 0 {
			return nsModes{}, errdefs.InvalidArgument("%s: mode NODE takes no uid or gid mappings", usernsField)
		}
		return m, nil
	case runtimeapi.NamespaceMode_POD:
	default:
		return nsModes{}, errdefs.InvalidArgument("%s: mode %v is not supported (NODE or POD)", usernsField, u.GetMode())
	}
	uids, err := podMapping(u.GetUids(), "uids")
	if err != nil {
		return nsModes{}, err
	}
	gids, err := podMapping(u.GetGids(), "gids")
	if err != nil {
		return nsModes{}, err
	}
	if m.hostNetwork() || m.hostPID() || m.hostIPC() {
		return nsModes{}, errdefs.InvalidArgument(
			"%s: a pod with its own user namespace cannot use the node's network, PID or IPC namespace", usernsField)
	}
	m.userns = &userMappings{uids: uids, gids: gids}
	return m, nil
}

// podMapping checks a pod user namespace's mapping as kubelet makes it: one
// range that maps the pod's root (container ID 0) to an unprivileged host
// range.
func podMapping(ms []*runtimeapi.IDMapping, field string) ([]specs.LinuxIDMapping, error) {
	if len(ms) != 1 {
		return nil, errdefs.InvalidArgument("%s.%s: mode POD needs exactly one mapping, got %d", usernsField, field, len(ms))
	}
	m := ms[0]
	switch {
	case m.GetContainerId() != 0:
		return nil, errdefs.InvalidArgument("%s.%s: the mapping must start at container ID 0, not %d",
			usernsField, field, m.GetContainerId())
	case m.GetLength() == 0:
		return nil, errdefs.InvalidArgument("%s.%s: the mapping has length 0", usernsField, field)
	case m.GetHostId() == 0:
		return nil, errdefs.InvalidArgument("%s.%s: mapping the pod's root to host ID 0 defeats the user namespace",
			usernsField, field)
	case uint64(m.GetHostId())+uint64(m.GetLength()) > 1<<32-1:
		return nil, errdefs.InvalidArgument("%s.%s: host IDs %d+%d overflow", usernsField, field, m.GetHostId(), m.GetLength())
	}
	return []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.GetHostId(), Size: m.GetLength()}}, nil
}

// hostNetwork: the pod uses the node's network, and with it the node's UTS
// namespace (its hostname), as kubelet's hostNetwork pods expect.
func (m nsModes) hostNetwork() bool { return m.network == runtimeapi.NamespaceMode_NODE }
func (m nsModes) hostIPC() bool     { return m.ipc == runtimeapi.NamespaceMode_NODE }
func (m nsModes) hostPID() bool     { return m.pid == runtimeapi.NamespaceMode_NODE }
func (m nsModes) hostUsers() bool   { return m.userns == nil }

// sandboxNamespaces: the pause process creates the pod's IPC, UTS and PID
// namespaces (unless they are the node's) and joins the network namespace
// the caller prepared for CNI.
func sandboxNamespaces(m nsModes, netnsPath string) ([]specs.LinuxNamespace, error) {
	nss := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	if !m.hostNetwork() {
		if netnsPath == "" {
			return nil, errdefs.FailedPrecondition("sandbox needs a network namespace path: its network mode is %v", m.network)
		}
		nss = append(nss,
			specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netnsPath},
			specs.LinuxNamespace{Type: specs.UTSNamespace})
	}
	if !m.hostIPC() {
		nss = append(nss, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}
	if !m.hostPID() {
		nss = append(nss, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	if !m.hostUsers() {
		nss = append(nss, specs.LinuxNamespace{Type: specs.UserNamespace})
	}
	return nss, nil
}

// containerNamespaces: a container has its own mount namespace and joins the
// pause process's IPC and UTS namespaces, the pod's network namespace, and
// the PID namespace its mode asks for.
func containerNamespaces(m nsModes, netnsPath string, sandboxPID, targetPID int) ([]specs.LinuxNamespace, error) {
	needSandbox := !m.hostNetwork() || !m.hostIPC() || m.pid == runtimeapi.NamespaceMode_POD || !m.hostUsers()
	if needSandbox && sandboxPID <= 0 {
		return nil, errdefs.FailedPrecondition("container needs the sandbox's pid to join its namespaces, got %d", sandboxPID)
	}
	proc := func(pid int, ns string) string { return fmt.Sprintf("/proc/%d/ns/%s", pid, ns) }
	nss := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	if !m.hostUsers() {
		nss = append(nss, specs.LinuxNamespace{Type: specs.UserNamespace, Path: proc(sandboxPID, "user")})
	}
	if !m.hostNetwork() {
		if netnsPath == "" {
			return nil, errdefs.FailedPrecondition("container needs the pod's network namespace path: its network mode is %v", m.network)
		}
		nss = append(nss,
			specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netnsPath},
			specs.LinuxNamespace{Type: specs.UTSNamespace, Path: proc(sandboxPID, "uts")})
	}
	if !m.hostIPC() {
		nss = append(nss, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: proc(sandboxPID, "ipc")})
	}
	switch m.pid {
	case runtimeapi.NamespaceMode_POD:
		nss = append(nss, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: proc(sandboxPID, "pid")})
	case runtimeapi.NamespaceMode_CONTAINER:
		nss = append(nss, specs.LinuxNamespace{Type: specs.PIDNamespace})
	case runtimeapi.NamespaceMode_NODE:
	case runtimeapi.NamespaceMode_TARGET:
		if targetPID <= 0 {
			return nil, errdefs.InvalidArgument(
				"linux.security_context.namespace_options.target_id: PID mode TARGET needs a running target container")
		}
		nss = append(nss, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: proc(targetPID, "pid")})
	default:
		return nil, errdefs.InvalidArgument("linux.security_context.namespace_options.pid: unknown mode %v", m.pid)
	}
	return nss, nil
}
