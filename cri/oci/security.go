package oci

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultMaskedPaths hide kernel interfaces that leak host information or
// allow attacks on the host.
func defaultMaskedPaths() []string {
	return []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
}

// defaultReadonlyPaths are kernel interfaces a container may read but not
// change.
func defaultReadonlyPaths() []string {
	return []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
}

// pathsOr returns the requested paths, or the defaults when none were
// requested (the CRI cannot tell "none" from "unset").
func pathsOr(requested []string, defaults func() []string) []string {
	if len(requested) > 0 {
		return slices.Clone(requested)
	}
	return defaults()
}

// newSpec is the skeleton both sandboxes and containers start from.
func newSpec(rootfs string) *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs},
		Process: &specs.Process{
			Cwd:     "/",
			Rlimits: defaultRlimits(),
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{Devices: denyAllDevices()},
		},
	}
}
