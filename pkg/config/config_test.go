package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadFileRejectsUnknownField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.json")
	os.WriteFile(path, []byte(`{"root": "/x", "cgroupDrvier": "systemd"}`), 0o600)
	c := Default()
	_, err := c.LoadFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "cgroupDrvier") {
		t.Fatalf("LoadFile error = %v, want one naming the file and the field", err)
	}
}

func TestValidate(t *testing.T) {
	good := Default()
	good.RuncBinary, good.ShimBinary, good.PauseBinary, good.ExecBinary = "/bin/true", "/bin/true", "/bin/true", "/bin/true"
	if _, err := good.Validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"relative root":                 func(c *Config) { c.Root = "var/lib/berth" },
		"bad driver":                    func(c *Config) { c.CgroupDriver = "cgroupv3" },
		"bad log level":                 func(c *Config) { c.LogLevel = "loud" },
		"runc not found":                func(c *Config) { c.RuncBinary = "runc" },
		"bad node name":                 func(c *Config) { c.NodeName = "node_1" },
		"url without URL":               func(c *Config) { c.Upstream = "url" },
		"URL with none":                 func(c *Config) { c.Upstream, c.StaticPodURL = "none", "http://h/p" },
		"unknown upstream":              func(c *Config) { c.Upstream = "etcd" },
		"kubernetes without kubeconfig": func(c *Config) { c.Upstream = "kubernetes" },
		"kubeconfig with url":           func(c *Config) { c.Upstream, c.StaticPodURL, c.Kubeconfig = "url", "http://h/p", "/k" },
		"bad node IP":                   func(c *Config) { c.Kubeconfig, c.NodeIP = "/k", "10.0.0" },
		"bad address":                   func(c *Config) { c.Address = "localhost" },
		"port out of range":             func(c *Config) { c.Port = 65536 },
		"certificate without key":       func(c *Config) { c.TLSCertFile = "/etc/berth/kubelet.crt" },
		"read-only port out of range":   func(c *Config) { c.ReadOnlyPort = -1 },
		"unknown swap behavior":         func(c *Config) { c.SwapBehavior = "UnlimitedSwap" },
		"bad healthz address":           func(c *Config) { c.HealthzBindAddress = "localhost" },
		"no pods":                       func(c *Config) { c.MaxPods = 0 },
		"bad cluster DNS":               func(c *Config) { c.ClusterDNS = []string{"dns.local"} },
		"bad cluster domain":            func(c *Config) { c.ClusterDomain = "Cluster_Local" },
		"relative resolv.conf":          func(c *Config) { c.ResolvConf = "resolv.conf" },
		"restart period too long":       func(c *Config) { c.MaxContainerRestartPeriod = Duration{10 * time.Minute} },
		"restart period too short":      func(c *Config) { c.MaxContainerRestartPeriod = Duration{time.Millisecond} },
		"polling too often": func(c *Config) {
			c.StaticPodURL, c.HTTPCheckFrequency = "http://h/p", Duration{time.Millisecond}
		},
	} {
		c := good
		mutate(&c)
		if _, err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}

func TestResolveCgroupDriver(t *testing.T) {
	for _, tc := range []struct {
		set     string
		systemd bool
		want    string
		warns   bool
		fails   bool
	}{
		{"", true, "systemd", false, false},
		{"", false, "cgroupfs", false, false},
		{"systemd", true, "systemd", false, false},
		{"cgroupfs", false, "cgroupfs", false, false},
		{"cgroupfs", true, "cgroupfs", true, false},
		{"systemd", false, "", false, true},
	} {
		c := Config{CgroupDriver: tc.set}
		w, err := c.ResolveCgroupDriver(tc.systemd)
		if (err != nil) != tc.fails || (w != "") != tc.warns {
			t.Errorf("%q with systemd %v: warning %q, error %v", tc.set, tc.systemd, w, err)
			continue
		}
		if err == nil && c.CgroupDriver != tc.want {
			t.Errorf("%q with systemd %v: driver %s, want %s", tc.set, tc.systemd, c.CgroupDriver, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), "--cgroup-driver=cgroupfs") {
			t.Errorf("the refusal does not say what to do: %v", err)
		}
	}
}

func TestUpstream(t *testing.T) {
	c := Default()
	if c.UpstreamPlugin() != "none" {
		t.Errorf("default upstream %q", c.UpstreamPlugin())
	}
	c.StaticPodURL = "http://h/pods"
	if c.UpstreamPlugin() != "url" {
		t.Errorf("with a URL: %q, want url", c.UpstreamPlugin())
	}
	h := map[string][]string{}
	if err := ParseURLHeader(h, "a:hello, b:again,a:world"); err != nil {
		t.Fatal(err)
	}
	if len(h["A"]) != 2 || h["A"][1] != "world" || h["B"][0] != "again" {
		t.Errorf("headers %v", h)
	}
	if err := ParseURLHeader(h, "novalue"); err == nil {
		t.Error("a header without a colon was accepted")
	}
}

func TestNodeLabelsAndTaints(t *testing.T) {
	l, err := ParseNodeLabels("example.com/rack=r1,tier=edge")
	if err != nil || l["example.com/rack"] != "r1" || l["tier"] != "edge" {
		t.Errorf("labels %v, %v", l, err)
	}
	for _, bad := range []string{"novalue", "bad key=x", "k=" + strings.Repeat("v", 64)} {
		if _, err := ParseNodeLabels(bad); err == nil {
			t.Errorf("label %q accepted", bad)
		}
	}
	taints, err := ParseTaints("dedicated=edge:NoSchedule,gpu:NoExecute")
	if err != nil || len(taints) != 2 || taints[0].Value != "edge" || taints[1].Key != "gpu" || taints[1].Effect != "NoExecute" {
		t.Errorf("taints %v, %v", taints, err)
	}
	for _, bad := range []string{"k=v", "k=v:Sometimes", ":NoSchedule"} {
		if _, err := ParseTaints(bad); err == nil {
			t.Errorf("taint %q accepted", bad)
		}
	}
}

func TestKubeletAPIOptions(t *testing.T) {
	c := Default()
	if c.Port != 10250 || c.Address != "0.0.0.0" {
		t.Errorf("defaults %s:%d, want kubelet's 0.0.0.0:10250", c.Address, c.Port)
	}
	path := filepath.Join(t.TempDir(), "berth.json")
	os.WriteFile(path, []byte(`{"port": 10251, "address": "127.0.0.1", "clientCAFile": "/etc/berth/ca.crt"}`), 0o600)
	if _, err := c.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if c.Port != 10251 || c.Address != "127.0.0.1" || c.ClientCAFile != "/etc/berth/ca.crt" {
		t.Errorf("from the file: %s:%d, client CA %q", c.Address, c.Port, c.ClientCAFile)
	}
}
