package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/atomicfile"
	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/network"
	"github.com/berth-project/berth/cri/store"
)

// sandboxFiles are the host paths of the files every container of the pod
// gets at /etc/hostname, /etc/hosts and /etc/resolv.conf.
type sandboxFiles struct {
	hostname, hosts, resolvConf string
}

// writeSandboxFiles writes the pod's hostname, hosts and resolv.conf into
// dir. Host-network pods see the node's hostname and hosts file.
func writeSandboxFiles(dir string, cfg *runtimeapi.PodSandboxConfig, hostNetwork bool, ips []string) (sandboxFiles, error) {
	f := sandboxFiles{
		hostname:   filepath.Join(dir, "hostname"),
		hosts:      filepath.Join(dir, "hosts"),
		resolvConf: filepath.Join(dir, "resolv.conf"),
	}
	hostname := cfg.GetHostname()
	if hostNetwork || hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return f, err
		}
		if hostNetwork || hostname == "" {
			hostname = h
		}
	}
	if err := atomicfile.WriteFile(f.hostname, []byte(hostname+"\n"), 0o644); err != nil {
		return f, err
	}

	var hosts []byte
	if hostNetwork {
		hosts, _ = os.ReadFile("/etc/hosts")
	} else {
		var b strings.Builder
		b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
		for _, ip := range ips {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
		hosts = []byte(b.String())
	}
	if err := atomicfile.WriteFile(f.hosts, hosts, 0o644); err != nil {
		return f, err
	}

	resolv, err := resolvConf(cfg.GetDnsConfig())
	if err != nil {
		return f, err
	}
	if err := atomicfile.WriteFile(f.resolvConf, resolv, 0o644); err != nil {
		return f, err
	}
	// In its own user namespace the pod's root may edit them, as elsewhere.
	if uid, gid, ok := podRoot(cfg); ok {
		for _, p := range []string{f.hostname, f.hosts, f.resolvConf} {
			if err := os.Chown(p, int(uid), int(gid)); err != nil {
				return f, err
			}
		}
	}
	return f, nil
}

// podRoot is the host user and group of a pod's root when the pod has a
// user namespace of its own (hostUsers: false). The options were checked
// when the sandbox was created.
func podRoot(cfg *runtimeapi.PodSandboxConfig) (uid, gid uint32, ok bool) {
	u := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions()
	if u == nil || u.GetMode() != runtimeapi.NamespaceMode_POD || len(u.GetUids()) == 0 || len(u.GetGids()) == 0 {
		return 0, 0, false
	}
	return u.GetUids()[0].GetHostId(), u.GetGids()[0].GetHostId(), true
}

// resolvConf renders the pod's DNSConfig, or copies the node's file when
// the pod gives none (as containerd does).
func resolvConf(dns *runtimeapi.DNSConfig) ([]byte, error) {
	if len(dns.GetServers()) == 0 && len(dns.GetSearches()) == 0 && len(dns.GetOptions()) == 0 {
		data, err := os.ReadFile("/etc/resolv.conf")
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		return data, nil
	}
	var b strings.Builder
	for i, s := range dns.GetServers() {
		if net.ParseIP(s) == nil {
			return nil, errdefs.InvalidArgument("config.dns_config.servers[%d]: %q is not an IP address", i, s)
		}
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(dns.GetSearches()) > 0 {
		for i, s := range dns.GetSearches() {
			if strings.ContainsAny(s, " \t\n") {
				return nil, errdefs.InvalidArgument("config.dns_config.searches[%d]: %q contains white space", i, s)
			}
		}
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.GetSearches(), " "))
	}
	if len(dns.GetOptions()) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.GetOptions(), " "))
	}
	return []byte(b.String()), nil
}

// attachment describes the sandbox to CNI.
func attachment(meta *store.SandboxMeta) network.Attachment {
	cfg := meta.Config.Msg
	a := network.Attachment{
		SandboxID:    meta.ID,
		NetNS:        meta.NetNS,
		PodName:      cfg.GetMetadata().GetName(),
		PodNamespace: cfg.GetMetadata().GetNamespace(),
		PodUID:       cfg.GetMetadata().GetUid(),
	}
	for _, pm := range cfg.GetPortMappings() {
		if pm.GetHostPort() <= 0 {
			continue
		}
		a.PortMappings = append(a.PortMappings, network.PortMapping{
			HostPort:      pm.GetHostPort(),
			ContainerPort: pm.GetContainerPort(),
			Protocol:      strings.ToLower(pm.GetProtocol().String()),
			HostIP:        pm.GetHostIp(),
		})
	}
	return a
}
