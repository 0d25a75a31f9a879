package network

import (
	"errors"
	"net"
	"reflect"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/berth-project/berth/cri/errdefs"
)

func TestPodIPs(t *testing.T) {
	zero, one := 0, 1
	res := &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{
			{Name: "berth0"},                     // host side
			{Name: "eth0", Sandbox: "/run/ns/x"}, // pod side
		},
		IPs: []*current.IPConfig{
			{Interface: &one, Address: net.IPNet{IP: net.ParseIP("fd00::5"), Mask: net.CIDRMask(64, 128)}},
			{Interface: &zero, Address: net.IPNet{IP: net.ParseIP("10.0.0.1").To4(), Mask: net.CIDRMask(24, 32)}},
			{Interface: &one, Address: net.IPNet{IP: net.ParseIP("10.0.0.5").To4(), Mask: net.CIDRMask(24, 32)}},
			{Address: net.IPNet{IP: net.ParseIP("10.1.0.5").To4(), Mask: net.CIDRMask(24, 32)}},
		},
	}
	got := podIPs(res)
	want := []string{"10.0.0.5", "10.1.0.5", "fd00::5"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("podIPs = %v, want %v", got, want)
	}
}

func TestValidate(t *testing.T) {
	ok := PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "TCP"}
	for name, a := range map[string]Attachment{
		"no sandbox":        {NetNS: "/x"},
		"container port 0":  {SandboxID: "s", PortMappings: []PortMapping{ok, {HostPort: 1, ContainerPort: 0}}},
		"host port too big": {SandboxID: "s", PortMappings: []PortMapping{{HostPort: 70000, ContainerPort: 80}}},
		"negative host":     {SandboxID: "s", PortMappings: []PortMapping{{HostPort: -1, ContainerPort: 80}}},
		"protocol":          {SandboxID: "s", PortMappings: []PortMapping{{HostPort: 1, ContainerPort: 80, Protocol: "icmp"}}},
		"host IP":           {SandboxID: "s", PortMappings: []PortMapping{{HostPort: 1, ContainerPort: 80, HostIP: "localhost"}}},
	} {
		if err := a.validate(); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	good := Attachment{SandboxID: "s", PortMappings: []PortMapping{ok, {ContainerPort: 53, Protocol: "udp"}}}
	if err := good.validate(); err != nil {
		t.Errorf("valid attachment: %v", err)
	}
}

func TestRuntimeConf(t *testing.T) {
	a := Attachment{
		SandboxID: "sb1", PodName: "web", PodNamespace: "prod", PodUID: "uid-1",
		PortMappings: []PortMapping{
			{HostPort: 8080, ContainerPort: 80, Protocol: "TCP", HostIP: "127.0.0.1"},
			{HostPort: 0, ContainerPort: 9090}, // not published
			{HostPort: 5353, ContainerPort: 53, Protocol: "udp"},
		},
	}
	rt := a.runtimeConf("eth0", "/run/netns/x")
	if rt.ContainerID != "sb1" || rt.IfName != "eth0" || rt.NetNS != "/run/netns/x" {
		t.Errorf("runtime conf: %+v", rt)
	}
	wantArgs := [][2]string{
		{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "prod"}, {"K8S_POD_NAME", "web"},
		{"K8S_POD_INFRA_CONTAINER_ID", "sb1"}, {"K8S_POD_UID", "uid-1"},
	}
	if !reflect.DeepEqual(rt.Args, wantArgs) {
		t.Errorf("args = %v", rt.Args)
	}
	wantMaps := []portMapEntry{{8080, 80, "tcp", "127.0.0.1"}, {5353, 53, "udp", ""}}
	if !reflect.DeepEqual(rt.CapabilityArgs["portMappings"], wantMaps) {
		t.Errorf("portMappings = %v", rt.CapabilityArgs["portMappings"])
	}
	if rt := (Attachment{SandboxID: "x"}).runtimeConf("eth0", ""); rt.CapabilityArgs != nil {
		t.Errorf("capability args without port mappings: %v", rt.CapabilityArgs)
	}
}

func TestNewValidates(t *testing.T) {
	good := Config{ConfDir: "/etc/cni/net.d", BinDirs: []string{"/opt/cni/bin"}, CacheDir: "/var/lib/berth/cni"}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Config){
		"no conf dir":  func(c *Config) { c.ConfDir = "" },
		"no bin dirs":  func(c *Config) { c.BinDirs = nil },
		"no cache dir": func(c *Config) { c.CacheDir = "" },
		"bad pod CIDR": func(c *Config) { c.PodCIDR = "10.0.0.0" },
	} {
		c := good
		mutate(&c)
		if _, err := New(c); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
}
