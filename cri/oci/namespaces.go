package oci

import (
	"fmt"

	"github.com/berth-project/berth/cri/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nsModes are the namespace modes of a sandbox or container; a nil option
// means POD for all, as the CRI defines.
type nsModes struct {
	network, pid, ipc runtimeapi.NamespaceMode
}

func modesOf(opts *runtimeapi.NamespaceOption) (nsModes, error) {
	if u := opts.GetUsernsOptions(); u != nil && u.GetMode() != runtimeapi.NamespaceMode_NODE &&
		(len(u.GetUids()) > 0 || len(u.GetGids()) > 0) {
		return nsModes{}, fmt.Errorf("namespace_options.userns_options: user namespaces are not supported: %w",
			errdefs.ErrUnimplemented)
	}
	return nsModes{network: opts.GetNetwork(), pid: opts.GetPid(), ipc: opts.GetIpc()}, nil
}

// hostNetwork: the pod uses the node's network, and with it the node's UTS
// namespace (its hostname), as kubelet's hostNetwork pods expect.
func (m nsModes) hostNetwork() bool { return m.network == runtimeapi.NamespaceMode_NODE }
func (m nsModes) hostIPC() bool     { return m.ipc == runtimeapi.NamespaceMode_NODE }
func (m nsModes) hostPID() bool     { return m.pid == runtimeapi.NamespaceMode_NODE }

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
	return nss, nil
}

// containerNamespaces: a container has its own mount namespace and joins the
// pause process's IPC and UTS namespaces, the pod's network namespace, and
// the PID namespace its mode asks for.
func containerNamespaces(m nsModes, netnsPath string, sandboxPID, targetPID int) ([]specs.LinuxNamespace, error) {
	needSandbox := !m.hostNetwork() || !m.hostIPC() || m.pid == runtimeapi.NamespaceMode_POD
	if needSandbox && sandboxPID <= 0 {
		return nil, errdefs.FailedPrecondition("container needs the sandbox's pid to join its namespaces, got %d", sandboxPID)
	}
	proc := func(pid int, ns string) string { return fmt.Sprintf("/proc/%d/ns/%s", pid, ns) }
	nss := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
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
