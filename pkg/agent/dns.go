package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// dnsConfig is the pod's resolver configuration. berth has no cluster DNS,
// so ClusterFirst is Default (the node's resolv.conf), as kubelet does
// without --cluster-dns; None takes only the pod's dnsConfig, and the
// other policies add it to the node's. nil lets the runtime copy the
// node's file.
func dnsConfig(pod *v1.Pod, nodeResolvConf string) (*runtimeapi.DNSConfig, error) {
	extra := pod.Spec.DNSConfig
	if pod.Spec.DNSPolicy != v1.DNSNone && extra == nil {
		return nil, nil
	}
	cfg := &runtimeapi.DNSConfig{}
	if pod.Spec.DNSPolicy != v1.DNSNone {
		data, err := os.ReadFile(nodeResolvConf)
		if err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("node resolver configuration: %w", err)
		}
		cfg = parseResolvConf(data)
	}
	if extra != nil {
		cfg.Servers = append(cfg.Servers, extra.Nameservers...)
		cfg.Searches = append(cfg.Searches, extra.Searches...)
		for _, o := range extra.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			cfg.Options = append(cfg.Options, opt)
		}
	}
	return cfg, nil
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
