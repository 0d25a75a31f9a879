package main

import (
	"os"
	"path/filepath"
	"slices"
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
