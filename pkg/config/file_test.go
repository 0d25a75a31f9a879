package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKubeletConfiguration: a kubelet's configuration file works as
// berth's, the fields berth shares honoured, the others named in one
// warning; a document of berth's own kind sets the runtime.
func TestKubeletConfiguration(t *testing.T) {
	path := writeConfig(t, `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: /etc/kubernetes/manifests
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
cgroupDriver: systemd
cgroupRoot: /
podLogsDir: /srv/logs
imageGCHighThresholdPercent: 90
imageMinimumGCAge: 5m
port: 10251
authentication:
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
  webhook:
    enabled: true
  anonymous:
    enabled: false
authorization:
  mode: Webhook
registerWithTaints:
- {key: dedicated, value: edge, effect: NoSchedule}
maxPods: 50
clusterDNS: [10.96.0.10]
clusterDomain: cluster.local
resolvConf: ""
healthzPort: 0
readOnlyPort: 10255
memorySwap: {swapBehavior: LimitedSwap}
serializeImagePulls: false
maxParallelImagePulls: 3
crashLoopBackOff:
  maxContainerRestartPeriod: 30s
shutdownGracePeriod: 30s
shutdownGracePeriodCriticalPods: 10s
cpuManagerPolicy: static
topologyManagerPolicy: best-effort
---
apiVersion: berth.dev/v1alpha1
kind: BerthConfiguration
root: /srv/berth
logLevel: debug
`)
	c := Default()
	warnings, err := c.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.StaticPodPath != "/etc/kubernetes/manifests" || c.ContainerRuntimeEndpoint != "unix:///run/containerd/containerd.sock" ||
		c.CgroupDriver != "systemd" || c.CgroupRoot != "kubepods" || c.PodLogsDir != "/srv/logs" ||
		c.ImageGCHighThresholdPercent != 90 || c.ImageMinimumGCAge.Duration != 5*time.Minute || c.Port != 10251 ||
		c.ClientCAFile != "/etc/kubernetes/pki/ca.crt" || len(c.RegisterWithTaints) != 1 || c.Root != "/srv/berth" || c.LogLevel != "debug" {
		t.Errorf("config from the file: %+v", c)
	}
	if c.MaxPods != 50 || len(c.ClusterDNS) != 1 || c.ClusterDomain != "cluster.local" || c.ResolvConf != "" ||
		c.HealthzPort != 0 || c.ReadOnlyPort != 10255 || c.MaxParallelImagePulls != 3 || c.MaxContainerRestartPeriod.Duration != 30*time.Second ||
		c.ShutdownGracePeriod.Duration != 30*time.Second || c.ShutdownGracePeriodCriticalPods.Duration != 10*time.Second ||
		c.SwapBehavior != "LimitedSwap" {
		t.Errorf("node settings from the file: %+v", c)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], path) || !strings.HasSuffix(warnings[0], "ignored: cpuManagerPolicy, topologyManagerPolicy") {
		t.Errorf("warnings %q, want one naming cpuManagerPolicy and topologyManagerPolicy", warnings)
	}
	// kubelet's serializeImagePulls is one pull at a time.
	serial := writeConfig(t, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nserializeImagePulls: true\n")
	if _, err := c.LoadFile(serial); err != nil || c.MaxParallelImagePulls != 1 {
		t.Errorf("serializeImagePulls: true: %d pulls at a time, %v", c.MaxParallelImagePulls, err)
	}
}

// TestConfigFileErrors name the file, the line and the field.
func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          []string
	}{{
		name: "unknown KubeletConfiguration field",
		content: `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: /etc/kubernetes/manifests
staticPodPth: /typo
`,
		want: []string{"line 4", "staticPodPth"},
	}, {
		name: "bad value",
		content: `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
maxPods: many
`,
		want: []string{"line 3", "maxPods"},
	}, {
		name: "unknown berth field in the second document",
		content: `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
port: 10250
---
root: /srv/berth
cgroupDrvier: systemd
`,
		want: []string{"document 2", "line 6", "cgroupDrvier"},
	}, {
		name: "anonymous requests",
		content: `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication: {anonymous: {enabled: true}}
`,
		want: []string{"authentication.anonymous.enabled"},
	}, {
		name: "parallel pulls while serialized",
		content: `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
serializeImagePulls: true
maxParallelImagePulls: 4
`,
		want: []string{"maxParallelImagePulls 4", "serializeImagePulls"},
	}, {
		name:    "another kind",
		content: "apiVersion: v1\nkind: Pod\n",
		want:    []string{`kind "Pod"`, "KubeletConfiguration"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.content)
			c := Default()
			_, err := c.LoadFile(path)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append(tc.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// TestLoadDir: drop-ins are read in lexical order over what came before.
func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"10-base.conf":  "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nport: 10251\npodLogsDir: /srv/a\n",
		"20-later.conf": "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\npodLogsDir: /srv/b\n",
		"notes.txt":     "not read",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := Default()
	if _, err := c.LoadDir(dir); err != nil {
		t.Fatal(err)
	}
	if c.Port != 10251 || c.PodLogsDir != "/srv/b" {
		t.Errorf("after the drop-ins: port %d, podLogsDir %q", c.Port, c.PodLogsDir)
	}
	if _, err := c.LoadDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing drop-in directory accepted")
	}
}

func TestEvictionSettings(t *testing.T) {
	load := func(t *testing.T, content string) Config {
		t.Helper()
		c := Default()
		if _, err := c.LoadFile(writeConfig(t, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"+content)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := Default(); len(c.EvictionHard) != 4 || c.EvictionHard["memory.available"] != "100Mi" {
		t.Errorf("default evictionHard %v, want kubelet's four", c.EvictionHard)
	}
	// As kubelet: naming one threshold drops the other defaults...
	c := load(t, "evictionHard: {memory.available: 500Mi}\n")
	if len(c.EvictionHard) != 1 || c.EvictionHard["memory.available"] != "500Mi" {
		t.Errorf("evictionHard %v, want only memory.available", c.EvictionHard)
	}
	// ...unless mergeDefaultEvictionSettings keeps them.
	c = load(t, "mergeDefaultEvictionSettings: true\nevictionHard: {memory.available: 500Mi}\n")
	if len(c.EvictionHard) != 4 || c.EvictionHard["memory.available"] != "500Mi" || c.EvictionHard["nodefs.available"] != "10%" {
		t.Errorf("merged evictionHard %v", c.EvictionHard)
	}
	c = load(t, "evictionSoft: {nodefs.available: 20%}\nevictionSoftGracePeriod: {nodefs.available: 1m}\nevictionMaxPodGracePeriod: 30\nevictionPressureTransitionPeriod: 1m\n")
	if _, _, err := c.Eviction().Parse(); err != nil {
		t.Errorf("Parse: %v", err)
	}
	if c.EvictionSoft["nodefs.available"] != "20%" || c.EvictionMaxPodGracePeriod != 30 || c.EvictionPressureTransitionPeriod.Duration != time.Minute {
		t.Errorf("soft settings not applied: %+v", c.Eviction())
	}
	// A soft threshold without its grace period passes the file (another
	// file may add it) and fails the eviction manager's parse, which Validate runs.
	c = load(t, "evictionSoft: {nodefs.available: 20%}\n")
	if _, _, err := c.Eviction().Parse(); err == nil || !strings.Contains(err.Error(), "evictionSoftGracePeriod") {
		t.Errorf("Parse = %v, want the missing grace period named", err)
	}
	for _, bad := range []struct{ content, want string }{
		{"evictionHard:\n  memory.available: lots\n", `line 3: field evictionHard: memory.available: "lots" is not a quantity`},
		{"evictionHard: {disk.free: 1Gi}\n", `line 3: field evictionHard: unknown signal "disk.free"`},
		{"evictionSoftGracePeriod: {memory.available: soon}\n", `line 3: field evictionSoftGracePeriod: memory.available: "soon" is not a duration`},
	} {
		c := Default()
		path := writeConfig(t, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"+bad.content)
		if _, err := c.LoadFile(path); err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%q: err = %v, want the file and %q", bad.content, err, bad.want)
		}
	}
}
