package oci

import (
	"maps"
	"slices"
	"strings"

	"github.com/berth-project/berth/cri/errdefs"
)

// ipcSysctls are the kernel.* sysctls that belong to the IPC namespace
// (besides fs.mqueue.*).
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true,
	"kernel.sem": true, "kernel.shmall": true, "kernel.shmmax": true,
	"kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// utsSysctls belong to the UTS namespace.
var utsSysctls = map[string]bool{"kernel.hostname": true, "kernel.domainname": true}

// normalizeSysctl accepts both spellings Kubernetes allows: dots as
// separators ("net.ipv4.ip_forward") or slashes, where dots are then part of
// a name ("net/ipv4/conf/eth0.100/forwarding" is
// "net.ipv4.conf.eth0/100.forwarding").
func normalizeSysctl(name string) string {
	if !strings.Contains(name, "/") {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, name)
}

// podSysctls validates a pod's sysctls against the namespaces the pod owns
// and returns them in the dotted form runc expects. A sysctl that would
// change the node (net.* with host networking, a non-namespaced one) is an
// InvalidArgument naming it, rather than a runc failure at start.
func podSysctls(sysctls map[string]string, m nsModes) (map[string]string, error) {
	if len(sysctls) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(sysctls))
	for _, name := range slices.Sorted(maps.Keys(sysctls)) {
		n := normalizeSysctl(name)
		var ok bool
		var why string
		switch {
		case ipcSysctls[n] || strings.HasPrefix(n, "fs.mqueue."):
			ok, why = !m.hostIPC(), "the pod uses the node's IPC namespace"
		case strings.HasPrefix(n, "net."):
			ok, why = !m.hostNetwork(), "the pod uses the node's network namespace"
		case utsSysctls[n]:
			ok, why = !m.hostNetwork(), "the pod uses the node's UTS namespace"
		default:
			why = "it is not namespaced: setting it would change the node"
		}
		if !ok {
			return nil, errdefs.InvalidArgument("linux.sysctls[%q]: not allowed: %s", name, why)
		}
		out[n] = sysctls[name]
	}
	return out, nil
}
