package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nodeDNS is the node's resolver settings: kubelet's resolvConf (""
// means none), clusterDNS and clusterDomain.
type nodeDNS struct {
	resolvConf    string
	clusterDNS    []string
	clusterDomain string
}

// hostResolvConf is the file the runtime copies into a sandbox that is
// given no DNS configuration.
const hostResolvConf = "/etc/resolv.conf"

// The limits of glibc's resolver, which kubelet applies too.
const (
	maxDNSSearches    = 32
	maxDNSSearchChars = 2048
)

// dnsConfig is the pod's resolver configuration, as kubelet builds it.
// ClusterFirst (and ClusterFirstWithHostNet on the host network) uses the
// cluster's DNS servers and search path, or the node's (Default) without
// clusterDNS (kubelet says so in an event per pod; static pods on a node
// without a cluster are the common case here, so berth does not); None
// takes only the pod's dnsConfig; the other policies add the pod's to the
// node's. nil lets the runtime copy the host's resolv.conf.
func dnsConfig(pod *v1.Pod, node nodeDNS) (*runtimeapi.DNSConfig, error) {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = v1.DNSClusterFirst
	}
	if policy == v1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = v1.DNSDefault
	}
	cluster := policy == v1.DNSClusterFirst || policy == v1.DNSClusterFirstWithHostNet
	if cluster && len(node.clusterDNS) == 0 {
		policy, cluster = v1.DNSDefault, false
	}
	extra := pod.Spec.DNSConfig
	if !cluster && policy != v1.DNSNone && extra == nil && node.resolvConf == hostResolvConf {
		return nil, nil
	}
	cfg := &runtimeapi.DNSConfig{}
	if policy != v1.DNSNone {
		host, err := readResolvConf(node.resolvConf)
		if err != nil {
			return nil, err
		}
		cfg = host
	}
	if cluster {
		cfg.Servers = slices.Clone(node.clusterDNS)
		var searches []string
		if d := strings.TrimSuffix(node.clusterDomain, "."); d != "" {
			searches = []string{pod.Namespace + ".svc." + d, "svc." + d, d}
		}
		cfg.Searches = append(searches, cfg.Searches...)
		cfg.Options = []string{"ndots:5"}
	}
	if extra != nil {
		cfg.Servers = append(cfg.Servers, extra.Nameservers...)
		cfg.Searches = append(cfg.Searches, extra.Searches...)
		for _, o := range extra.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			cfg.Options = mergeOption(cfg.Options, o.Name, opt)
		}
	}
	cfg.Searches = trimSearches(dedupe(cfg.Searches))
	cfg.Servers = dedupe(cfg.Servers)
	return cfg, nil
}

func readResolvConf(file string) (*runtimeapi.DNSConfig, error) {
	if file == "" {
		return &runtimeapi.DNSConfig{}, nil
	}
	data, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("node resolver configuration: %w", err)
	}
	return parseResolvConf(data), nil
}

// mergeOption sets an option, replacing one of the same name: the pod's
// dnsConfig overrides the node's ndots, as kubelet's.
func mergeOption(opts []string, name, opt string) []string {
	for i, o := range opts {
		if n, _, _ := strings.Cut(o, ":"); n == name {
			opts[i] = opt
			return opts
		}
	}
	return append(opts, opt)
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// trimSearches keeps the search domains the resolver can use.
func trimSearches(s []string) []string {
	if len(s) > maxDNSSearches {
		s = s[:maxDNSSearches]
	}
	for n := len(strings.Join(s, " ")); n > maxDNSSearchChars && len(s) > 0; n = len(strings.Join(s, " ")) {
		s = s[:len(s)-1]
	}
	return s
}

func parseResolvConf(data []byte) *runtimeapi.DNSConfig {
	cfg := &runtimeapi.DNSConfig{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			cfg.Servers = append(cfg.Servers, f[1])
		case "search", "domain":
			cfg.Searches = f[1:]
		case "options":
			cfg.Options = append(cfg.Options, f[1:]...)
		}
	}
	return cfg
}
