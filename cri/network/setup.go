package network

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/netns"
)

// undoTimeout bounds the DEL that undoes a failed Setup; it runs on a
// fresh context because the request's may be what failed.
const undoTimeout = time.Minute

// Setup attaches the sandbox to the pod network: loopback up, then the pod
// network's ADD on eth0 with a's port mappings. On failure it runs DEL to
// undo what was done and returns the error, naming the sandbox and
// network.
func (m *Manager) Setup(ctx context.Context, a Attachment) (Result, error) {
	if err := a.validate(); err != nil {
		return Result{}, err
	}
	if a.NetNS == "" {
		return Result{}, errdefs.InvalidArgument("set up network for sandbox %s: no network namespace", a.SandboxID)
	}
	list, err := m.network()
	if err != nil {
		return Result{}, fmt.Errorf("set up network for sandbox %s: %w", a.SandboxID, err)
	}
	if ok, err := netns.IsNetNS(a.NetNS); err != nil {
		return Result{}, fmt.Errorf("set up network for sandbox %s: %w", a.SandboxID, err)
	} else if !ok {
		return Result{}, errdefs.FailedPrecondition("set up network for sandbox %s: %s is not a network namespace", a.SandboxID, a.NetNS)
	}

	if _, err := m.cni.AddNetworkList(ctx, m.loopback, a.runtimeConf(loopbackIfName, a.NetNS)); err != nil {
		err = classify(ctx, err, "set up loopback for sandbox %s: %w", a.SandboxID, err)
		return Result{}, m.undo(ctx, list, a, err)
	}
	res, err := m.cni.AddNetworkList(ctx, list, a.runtimeConf(podIfName, a.NetNS))
	if err != nil {
		err = classify(ctx, err, "set up network %q for sandbox %s: %w", list.Name, a.SandboxID, err)
		return Result{}, m.undo(ctx, list, a, err)
	}
	cur, err := current.NewResultFromResult(res)
	var ips []string
	if err == nil {
		ips = podIPs(cur)
	}
	if err == nil && len(ips) == 0 {
		err = fmt.Errorf("no IP address for %s", podIfName)
	}
	if err != nil {
		err = errdefs.FailedPrecondition("set up network %q for sandbox %s: result: %w", list.Name, a.SandboxID, err)
		return Result{}, m.undo(ctx, list, a, err)
	}
	return Result{IPs: ips, CNI: cur}, nil
}

// undo deletes a partial attachment after a failed Setup and returns the
// Setup error, annotated if the undo failed too.
func (m *Manager) undo(ctx context.Context, list *libcni.NetworkConfigList, a Attachment, setupErr error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	var problems []string
	if err := m.cni.DelNetworkList(ctx, list, a.runtimeConf(podIfName, a.NetNS)); err != nil {
		problems = append(problems, err.Error())
	}
	if err := m.cni.DelNetworkList(ctx, m.loopback, a.runtimeConf(loopbackIfName, a.NetNS)); err != nil {
		problems = append(problems, err.Error())
	}
	if problems == nil {
		return setupErr
	}
	return fmt.Errorf("%w (undo failed too: %s)", setupErr, strings.Join(problems, "; "))
}

// validate checks what both Setup and Teardown need.
func (a Attachment) validate() error {
	if a.SandboxID == "" {
		return errdefs.InvalidArgument("network attachment: sandbox ID is empty")
	}
	for _, p := range a.PortMappings {
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			return errdefs.InvalidArgument("sandbox %s: container port %d out of range", a.SandboxID, p.ContainerPort)
		}
		if p.HostPort < 0 || p.HostPort > 65535 {
			return errdefs.InvalidArgument("sandbox %s: host port %d out of range", a.SandboxID, p.HostPort)
		}
		switch strings.ToLower(p.Protocol) {
		case "", "tcp", "udp", "sctp":
		default:
			return errdefs.InvalidArgument("sandbox %s: port %d: unknown protocol %q", a.SandboxID, p.ContainerPort, p.Protocol)
		}
		if p.HostIP != "" && net.ParseIP(p.HostIP) == nil {
			return errdefs.InvalidArgument("sandbox %s: port %d: host IP %q is not an IP address", a.SandboxID, p.ContainerPort, p.HostIP)
		}
	}
	return nil
}

// portMapEntry is one element of the "portMappings" capability, in the
// shape the portmap plugin reads.
type portMapEntry struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// runtimeConf builds the libcni arguments of one invocation for a.
func (a Attachment) runtimeConf(ifName, netnsPath string) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: a.SandboxID,
		NetNS:       netnsPath,
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", a.PodNamespace},
			{"K8S_POD_NAME", a.PodName},
			{"K8S_POD_INFRA_CONTAINER_ID", a.SandboxID},
			{"K8S_POD_UID", a.PodUID},
		},
	}
	var maps []portMapEntry
	for _, p := range a.PortMappings {
		if p.HostPort == 0 {
			continue // not published on the host
		}
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		maps = append(maps, portMapEntry{p.HostPort, p.ContainerPort, proto, p.HostIP})
	}
	if len(maps) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": maps}
	}
	return rt
}

// podIPs returns the addresses the result gives the pod side, IPv4 first.
func podIPs(r *current.Result) []string {
	var ips []net.IP
	for _, ipc := range r.IPs {
		if i := ipc.Interface; i != nil && *i >= 0 && *i < len(r.Interfaces) && r.Interfaces[*i].Sandbox == "" {
			continue // a host-side address
		}
		ips = append(ips, ipc.Address.IP)
	}
	slices.SortStableFunc(ips, func(x, y net.IP) int {
		return boolInt(x.To4() == nil) - boolInt(y.To4() == nil)
	})
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
