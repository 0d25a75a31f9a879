package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestParseFlags: the file's settings stand unless a flag is given, and a
// given flag wins over the file (a flag's default never replaces the
// file's value).
func TestParseFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "berth.json")
	if err := os.WriteFile(file, []byte(`{"cniBinDirs": ["/opt/other/bin"], "root": "/srv/berth", "logLevel": "warn"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := parseFlags([]string{"--config", file, "--root", "/var/lib/x", "--node-labels", "a=b"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.CNIBinDirs, []string{"/opt/other/bin"}) || cfg.LogLevel != "warn" {
		t.Errorf("file settings lost: cniBinDirs %q, logLevel %q", cfg.CNIBinDirs, cfg.LogLevel)
	}
	if cfg.Root != "/var/lib/x" || cfg.NodeLabels["a"] != "b" {
		t.Errorf("flags lost: root %q, labels %v", cfg.Root, cfg.NodeLabels)
	}
	cfg, _, err = parseFlags([]string{"--cni-bin-dir", "/a,/b", "--config", file})
	if err != nil || !slices.Equal(cfg.CNIBinDirs, []string{"/a", "/b"}) {
		t.Errorf("--cni-bin-dir over the file: %q, %v", cfg.CNIBinDirs, err)
	}
	// kubelet's --serialize-image-pulls: true is one pull at a time, false
	// lifts that bound whatever the file said; a bad value is an error.
	serial := filepath.Join(t.TempDir(), "serial.yaml")
	if err := os.WriteFile(serial, []byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nserializeImagePulls: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--serialize-image-pulls"}, 1},
		{[]string{"--config", serial}, 1},
		{[]string{"--config", serial, "--serialize-image-pulls=false"}, 0},
		{[]string{"--config", serial, "--serialize-image-pulls=false", "--max-parallel-image-pulls", "3"}, 3},
	} {
		if cfg, _, err := parseFlags(tc.args); err != nil || cfg.MaxParallelImagePulls != tc.want {
			t.Errorf("%q: %d pulls at a time, %v; want %d", tc.args, cfg.MaxParallelImagePulls, err, tc.want)
		}
	}
	if _, _, err := parseFlags([]string{"--serialize-image-pulls=maybe"}); err == nil {
		t.Error("--serialize-image-pulls=maybe accepted")
	}
	if _, _, err := parseFlags([]string{"--config", filepath.Join(t.TempDir(), "missing.json")}); err == nil {
		t.Error("a missing config file accepted")
	}
}

func TestSwapDevices(t *testing.T) {
	none := "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
	if devs := swapDevices([]byte(none)); len(devs) != 0 {
		t.Errorf("no swap: %q", devs)
	}
	on := none + "/dev/sda2                               partition\t999420\t\t0\t\t-2\n/swapfile file 1024 0 -3\n"
	if devs := swapDevices([]byte(on)); !slices.Equal(devs, []string{"/dev/sda2", "/swapfile"}) {
		t.Errorf("swap on: %q", devs)
	}
	file := filepath.Join(t.TempDir(), "swaps")
	os.WriteFile(file, []byte(on), 0o644)
	if err := refuseSwap(file); err == nil || !strings.Contains(err.Error(), "/dev/sda2") || !strings.Contains(err.Error(), "--fail-swap-on=false") {
		t.Errorf("refuseSwap with swap on: %v", err)
	}
}
