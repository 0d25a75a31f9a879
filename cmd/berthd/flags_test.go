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
