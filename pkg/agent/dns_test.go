package agent

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

func TestDNSConfig(t *testing.T) {
	host := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(host, []byte("# the host's\nnameserver 192.0.2.53\nsearch example.com\noptions ndots:2 timeout:3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cluster := nodeDNS{resolvConf: host, clusterDNS: []string{"10.96.0.10"}, clusterDomain: "cluster.local"}
	noCluster := nodeDNS{resolvConf: host}
	pod := func(policy v1.DNSPolicy, hostNet bool, extra *v1.PodDNSConfig) *v1.Pod {
		p := &v1.Pod{Spec: v1.PodSpec{DNSPolicy: policy, HostNetwork: hostNet, DNSConfig: extra}}
		p.Namespace = "shop"
		return p
	}
	hostCfg := &runtimeapi.DNSConfig{Servers: []string{"192.0.2.53"}, Searches: []string{"example.com"}, Options: []string{"ndots:2", "timeout:3"}}
	clusterCfg := &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"},
		Searches: []string{"shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "example.com"}, Options: []string{"ndots:5"}}
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		node nodeDNS
		want *runtimeapi.DNSConfig
	}{
		{"ClusterFirst", pod(v1.DNSClusterFirst, false, nil), cluster, clusterCfg},
		{"policy unset is ClusterFirst", pod("", false, nil), cluster, clusterCfg},
		{"ClusterFirst without clusterDNS is Default", pod(v1.DNSClusterFirst, false, nil), noCluster, hostCfg},
		{"ClusterFirst on the host network is Default", pod(v1.DNSClusterFirst, true, nil), cluster, hostCfg},
		{"ClusterFirstWithHostNet", pod(v1.DNSClusterFirstWithHostNet, true, nil), cluster, clusterCfg},
		{"Default", pod(v1.DNSDefault, false, nil), cluster, hostCfg},
		{"Default with the host's own file: the runtime copies it", pod(v1.DNSDefault, false, nil), nodeDNS{resolvConf: hostResolvConf}, nil},
		{"no resolvConf", pod(v1.DNSDefault, false, nil), nodeDNS{}, &runtimeapi.DNSConfig{}},
		{"None", pod(v1.DNSNone, false, &v1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}}), cluster,
			&runtimeapi.DNSConfig{Servers: []string{"1.1.1.1"}}},
		{"the pod's options override the cluster's, its servers and searches are added",
			pod(v1.DNSClusterFirst, false, &v1.PodDNSConfig{Nameservers: []string{"10.96.0.10", "1.1.1.1"}, Searches: []string{"extra.test"},
				Options: []v1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("1")}, {Name: "edns0"}}}), cluster,
			&runtimeapi.DNSConfig{Servers: []string{"10.96.0.10", "1.1.1.1"},
				Searches: append(slices.Clone(clusterCfg.Searches), "extra.test"), Options: []string{"ndots:1", "edns0"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dnsConfig(tc.pod, tc.node)
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) || got != nil && (!slices.Equal(got.Servers, tc.want.Servers) ||
				!slices.Equal(got.Searches, tc.want.Searches) || !slices.Equal(got.Options, tc.want.Options)) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDNSSearchLimits(t *testing.T) {
	var many []string
	for i := range 40 {
		many = append(many, string(rune('a'+i%26))+"long-search-domain-name-that-takes-room.example.com")
	}
	got := trimSearches(many)
	if len(got) > maxDNSSearches {
		t.Errorf("%d search domains kept, the resolver reads %d", len(got), maxDNSSearches)
	}
	total := 0
	for _, s := range got {
		total += len(s) + 1
	}
	if total-1 > maxDNSSearchChars || len(got) == 0 {
		t.Errorf("search line of %d characters (%d domains)", total-1, len(got))
	}
}
