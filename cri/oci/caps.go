package oci

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-project/berth/cri/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// allCapabilities lists every capability Linux defines, in bit order, so the
// index of a name is its capability number.
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
	"CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultCapabilities returns the capabilities an unprivileged container gets
// when its request neither adds nor drops any: the set container users have
// come to expect from docker and containerd. The caller owns the slice.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN",
		"CAP_DAC_OVERRIDE",
		"CAP_FSETID",
		"CAP_FOWNER",
		"CAP_MKNOD",
		"CAP_NET_RAW",
		"CAP_SETGID",
		"CAP_SETUID",
		"CAP_SETFCAP",
		"CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT",
		"CAP_KILL",
		"CAP_AUDIT_WRITE",
	}
}

// hostBoundingSet is the capability bounding set of this process. A container
// cannot hold a capability that its runtime lacks: runc's capset fails with
// EPERM. Development machines, for instance, run without CAP_SYS_RESOURCE.
var hostBoundingSet = sync.OnceValue(func() map[string]bool {
	set, err := readBoundingSet("/proc/self/status")
	if err != nil {
		// Unknown: assume everything, runc will report what it cannot set.
		set = make(map[string]bool, len(allCapabilities))
		for _, c := range allCapabilities {
			set[c] = true
		}
	}
	return set
})

func readBoundingSet(statusFile string) (map[string]bool, error) {
	f, err := os.Open(statusFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapBnd:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("parse CapBnd in %s: %w", statusFile, err)
		}
		set := make(map[string]bool)
		for i, c := range allCapabilities {
			if mask&(1<<uint(i)) != 0 {
				set[c] = true
			}
		}
		return set, nil
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("no CapBnd line in %s", statusFile)
}

// availableCapabilities returns allCapabilities restricted to the host's
// bounding set, in bit order.
func availableCapabilities() []string {
	bnd := hostBoundingSet()
	out := make([]string, 0, len(allCapabilities))
	for _, c := range allCapabilities {
		if bnd[c] {
			out = append(out, c)
		}
	}
	return out
}

// normalizeCapability turns "sys_admin", "CAP_SYS_ADMIN" or "Sys_Admin" into
// "CAP_SYS_ADMIN"; "all" into "ALL". ok is false for unknown names.
func normalizeCapability(name string) (string, bool) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if n == "ALL" {
		return n, true
	}
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	return n, slices.Contains(allCapabilities, n)
}

// capabilitySets is the result of applying a CRI Capability request.
type capabilitySets struct {
	granted []string // bounding, effective and permitted
	ambient []string // also inheritable and ambient
}

// resolveCapabilities applies add/drop requests to the default set, in the
// order Kubernetes users expect: "ALL" in add, then "ALL" in drop, then the
// named additions, then the named drops. So drop [ALL] + add [NET_ADMIN]
// yields exactly NET_ADMIN. Defaults the runtime lacks are left out. A named capability the runtime itself lacks is a
// FailedPrecondition rather than a confusing runc failure; "ALL" quietly
// means "all that this node can grant".
func resolveCapabilities(req *runtimeapi.Capability) (capabilitySets, error) {
	bnd := hostBoundingSet()
	set := slices.DeleteFunc(DefaultCapabilities(), func(c string) bool { return !bnd[c] })
	adds, addAll, err := normalizeList(req.GetAddCapabilities(), "add_capabilities")
	if err != nil {
		return capabilitySets{}, err
	}
	drops, dropAll, err := normalizeList(req.GetDropCapabilities(), "drop_capabilities")
	if err != nil {
		return capabilitySets{}, err
	}
	ambient, ambientAll, err := normalizeList(req.GetAddAmbientCapabilities(), "add_ambient_capabilities")
	if err != nil {
		return capabilitySets{}, err
	}
	if ambientAll {
		return capabilitySets{}, errdefs.InvalidArgument(
			"linux.security_context.capabilities.add_ambient_capabilities: ALL is not allowed")
	}
	if addAll {
		set = availableCapabilities()
	}
	if dropAll {
		set = nil
	}
	for _, c := range slices.Concat(adds, ambient) {
		if !bnd[c] {
			return capabilitySets{}, errdefs.FailedPrecondition(
				"capability %s was requested but this node's runtime does not hold it in its bounding set", c)
		}
		if !slices.Contains(set, c) {
			set = append(set, c)
		}
	}
	set = slices.DeleteFunc(set, func(c string) bool { return slices.Contains(drops, c) })
	ambient = slices.DeleteFunc(ambient, func(c string) bool { return slices.Contains(drops, c) })
	return capabilitySets{granted: set, ambient: ambient}, nil
}

// normalizeList normalizes names, reporting whether "ALL" was among them.
func normalizeList(names []string, field string) (caps []string, all bool, err error) {
	for _, name := range names {
		c, ok := normalizeCapability(name)
		if !ok {
			return nil, false, errdefs.InvalidArgument(
				"linux.security_context.capabilities.%s: unknown capability %q", field, name)
		}
		if c == "ALL" {
			all = true
			continue
		}
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps, all, nil
}

// toSpec lays the sets out as runc expects them.
func (s capabilitySets) toSpec() *specs.LinuxCapabilities {
	return &specs.LinuxCapabilities{
		Bounding:    slices.Clone(s.granted),
		Effective:   slices.Clone(s.granted),
		Permitted:   slices.Clone(s.granted),
		Inheritable: slices.Clone(s.ambient),
		Ambient:     slices.Clone(s.ambient),
	}
}

// privilegedCapabilities grants everything the node can grant.
func privilegedCapabilities() capabilitySets {
	return capabilitySets{granted: availableCapabilities()}
}
