package network

import (
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/berth-project/berth/cri/errdefs"
)

// Config says where the network config, the plugins and libcni's cache are.
type Config struct {
	// ConfDir holds the CNI network configs, e.g. /etc/cni/net.d.
	ConfDir string
	// BinDirs is the plugin search path, e.g. /opt/cni/bin.
	BinDirs []string
	// CacheDir is libcni's cache of ADD results, under berth's state dir.
	// Teardown reads it, so it must survive a daemon restart.
	CacheDir string
	// PodCIDR is the node's pod subnet (comma-separated for dual stack),
	// if known at start. New only validates it; the daemon applies it with
	// UpdatePodCIDR(cfg.PodCIDR), since New has no side effects.
	PodCIDR string

	// The default network UpdatePodCIDR writes. Empty values keep the
	// template's: network "berth", bridge "berth0", host-local's own lease
	// directory (/var/lib/cni/networks).
	DefaultNetworkName string
	DefaultBridge      string
	DefaultIPAMDataDir string
}

// PortMapping publishes a pod port on the host (a CRI hostPort).
type PortMapping struct {
	HostPort      int32
	ContainerPort int32
	Protocol      string // "tcp" (default), "udp" or "sctp"
	HostIP        string // empty: every host address
}

// Attachment identifies one sandbox's attachment to the pod network.
type Attachment struct {
	SandboxID    string
	NetNS        string // path of the sandbox's pinned network namespace
	PodName      string
	PodNamespace string
	PodUID       string
	PortMappings []PortMapping
}

// Result is what Setup gives the sandbox.
type Result struct {
	IPs []string // pod IPs, primary first (IPv4 before IPv6)
	// CNI is the pod network's result as the CNI specification spells it
	// (interfaces, ips, routes, dns), for crictl inspectp.
	CNI *current.Result
}

const (
	podIfName      = "eth0"
	loopbackIfName = "lo"
	loopbackName   = "cni-loopback"
)

// Manager attaches sandboxes to the pod network. Its methods are safe for
// concurrent use; callers serialise Setup and Teardown of one sandbox.
type Manager struct {
	cfg      Config
	cni      *libcni.CNIConfig
	loopback *libcni.NetworkConfigList

	mu     sync.Mutex // guards loaded and the check-then-write of UpdatePodCIDR
	loaded loadedConf
}

// New validates cfg and returns a Manager. It reads nothing but cfg and
// writes nothing.
func New(cfg Config) (*Manager, error) {
	if cfg.ConfDir == "" {
		return nil, errdefs.InvalidArgument("network config: CNI config directory is empty")
	}
	if len(cfg.BinDirs) == 0 {
		return nil, errdefs.InvalidArgument("network config: no CNI plugin directory")
	}
	if cfg.CacheDir == "" {
		return nil, errdefs.InvalidArgument("network config: CNI cache directory is empty")
	}
	if cfg.PodCIDR != "" {
		if _, err := parsePodCIDR(cfg.PodCIDR); err != nil {
			return nil, err
		}
	}
	loopback, err := libcni.NetworkConfFromBytes([]byte(
		`{"cniVersion":"1.0.0","name":"` + loopbackName + `","plugins":[{"type":"loopback"}]}`))
	if err != nil {
		return nil, fmt.Errorf("loopback network config: %w", err)
	}
	return &Manager{
		cfg: cfg,
		// An explicit exec: given nil, libcni sets one lazily on first use,
		// unsynchronised, and parallel sandboxes race on it.
		cni: libcni.NewCNIConfigWithCacheDir(cfg.BinDirs, cfg.CacheDir, &invoke.DefaultExec{
			RawExec:       &invoke.RawExec{Stderr: os.Stderr},
			PluginDecoder: version.PluginDecoder{},
		}),
		loopback: loopback,
	}, nil
}

// parsePodCIDR splits a comma-separated pod CIDR and checks each subnet
// leaves room for a gateway and at least one pod.
func parsePodCIDR(cidr string) ([]string, error) {
	var subnets []string
	for _, s := range splitTrim(cidr) {
		_, ipnet, err := net.ParseCIDR(s)
		if err != nil {
			return nil, errdefs.InvalidArgument("pod CIDR %q: %q is not a CIDR", cidr, s)
		}
		ones, bits := ipnet.Mask.Size()
		if bits-ones < 2 {
			return nil, errdefs.InvalidArgument("pod CIDR %q: %s is too small for a gateway and a pod", cidr, s)
		}
		subnets = append(subnets, ipnet.String())
	}
	if len(subnets) == 0 {
		return nil, errdefs.InvalidArgument("pod CIDR %q: no subnet", cidr)
	}
	return subnets, nil
}
