package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadFileRejectsUnknownField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.json")
	os.WriteFile(path, []byte(`{"root": "/x", "cgroupDrvier": "systemd"}`), 0o600)
	c := Default()
	err := c.LoadFile(path)
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
		"relative root":  func(c *Config) { c.Root = "var/lib/berth" },
		"bad driver":     func(c *Config) { c.CgroupDriver = "cgroupv3" },
		"bad log level":  func(c *Config) { c.LogLevel = "loud" },
		"runc not found": func(c *Config) { c.RuncBinary = "runc" },
		"bad node name":  func(c *Config) { c.NodeName = "node_1" },
	} {
		c := good
		mutate(&c)
		if _, err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}
