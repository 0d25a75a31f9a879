package harness

import (
	"os"
	"path/filepath"
	"slices"
)

// RegistryConfigPath is where SetRegistryConfig writes berthd's registry
// configuration.
func (d *Daemon) RegistryConfigPath() string { return filepath.Join(d.Dir, "registries.yaml") }

// SetRegistryConfig writes yaml as berthd's registry configuration
// (RegistryConfigPath) and has every later Start pass it with
// --registry-config. A running berthd reads it on its next start.
func (d *Daemon) SetRegistryConfig(yaml string) error {
	if err := os.WriteFile(d.RegistryConfigPath(), []byte(yaml), 0o644); err != nil {
		return err
	}
	if !slices.Contains(d.extraArgs, "--registry-config") {
		d.extraArgs = append(d.extraArgs, "--registry-config", d.RegistryConfigPath())
	}
	return nil
}

// SetRuntimeEndpoint has every later Start run the agent against another
// CRI runtime (--container-runtime-endpoint).
func (d *Daemon) SetRuntimeEndpoint(endpoint string) {
	d.extraArgs = append(d.extraArgs, "--container-runtime-endpoint", endpoint)
}

// NRISocket is where EnableNRI has berthd listen for NRI plugins.
func (d *Daemon) NRISocket() string { return filepath.Join(d.Dir, "nri.sock") }

// EnableNRI has every later Start serve NRI plugins on NRISocket, with no
// pre-installed plugins.
func (d *Daemon) EnableNRI() {
	d.extraArgs = append(d.extraArgs, "--nri-socket", d.NRISocket(),
		"--nri-plugin-path", filepath.Join(d.Dir, "nri-plugins"), "--nri-plugin-config-path", filepath.Join(d.Dir, "nri-conf"))
}

// SetLogLevel has every later Start log at level (the tests' default is
// debug, which logs every CRI call: too much for a benchmark).
func (d *Daemon) SetLogLevel(level string) {
	d.extraArgs = append(d.extraArgs, "--log-level", level)
}

// SetExecHelper sets berthd's berth-exec binary ("": every exec through
// runc), for the next Start.
func (d *Daemon) SetExecHelper(path string) {
	d.extraArgs = append(d.extraArgs, "--exec-helper="+path)
}

// AddArgs has every later Start pass more berthd flags.
func (d *Daemon) AddArgs(args ...string) {
	d.extraArgs = append(d.extraArgs, args...)
}
