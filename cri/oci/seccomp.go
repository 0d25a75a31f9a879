package oci

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/berth-project/berth/cri/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Values of the deprecated seccomp_profile_path field.
const (
	profileRuntimeDefault = "runtime/default"
	profileDockerDefault  = "docker/default"
	profileUnconfined     = "unconfined"
	profileLocalhost      = "localhost/"
)

// maxProfileSize bounds what a Localhost profile may weigh; real ones are a
// few tens of KiB.
const maxProfileSize = 4 << 20

// seccompFor picks the seccomp filter of a sandbox or container from its
// security context: the typed profile when present, else the deprecated
// path string, else unconfined (kubelet's behaviour unless configured).
// field names the security context in error messages. caps are the
// process's effective capabilities, which decide both the default profile's
// exemptions and docker-style "includes.caps" rules of Localhost profiles.
func seccompFor(profile *runtimeapi.SecurityProfile, path, field string, caps []string) (*specs.LinuxSeccomp, error) {
	if profile != nil {
		switch profile.GetProfileType() {
		case runtimeapi.SecurityProfile_RuntimeDefault:
			return DefaultSeccompProfile(caps), nil
		case runtimeapi.SecurityProfile_Unconfined:
			return nil, nil
		case runtimeapi.SecurityProfile_Localhost:
			ref := profile.GetLocalhostRef()
			if !filepath.IsAbs(ref) {
				return nil, errdefs.InvalidArgument(
					"%s.seccomp.localhost_ref: %q is not an absolute path", field, ref)
			}
			return loadSeccompProfile(ref, caps)
		default:
			return nil, errdefs.InvalidArgument(
				"%s.seccomp.profile_type: unknown type %v", field, profile.GetProfileType())
		}
	}
	switch {
	case path == "" || path == profileUnconfined:
		return nil, nil
	case path == profileRuntimeDefault || path == profileDockerDefault:
		return DefaultSeccompProfile(caps), nil
	case strings.HasPrefix(path, profileLocalhost):
		file := strings.TrimPrefix(path, profileLocalhost)
		if !filepath.IsAbs(file) {
			return nil, errdefs.InvalidArgument(
				"%s.seccomp_profile_path: %q does not name an absolute path", field, path)
		}
		return loadSeccompProfile(file, caps)
	}
	return nil, errdefs.InvalidArgument("%s.seccomp_profile_path: unknown profile %q", field, path)
}

// profileFile is what a Localhost profile may contain: an OCI LinuxSeccomp,
// or a docker-style profile, which adds archMap, per-rule "name" and
// "includes"/"excludes" filters.
type profileFile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	ArchMap          []profileArch            `json:"archMap,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Syscalls         []profileSyscall         `json:"syscalls,omitempty"`
}

type profileArch struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

type profileSyscall struct {
	specs.LinuxSyscall
	Name     string        `json:"name,omitempty"`
	Includes profileFilter `json:"includes"`
	Excludes profileFilter `json:"excludes"`
}

type profileFilter struct {
	Caps   []string `json:"caps,omitempty"`
	Arches []string `json:"arches,omitempty"`
	// minKernel is accepted but not evaluated: a rule meant for newer
	// kernels names syscalls that runc skips when they are unknown.
}

var knownActions = []specs.LinuxSeccompAction{
	specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap,
	specs.ActErrno, specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
}

// loadSeccompProfile reads and converts a profile file from the node. Every
// error names the file.
func loadSeccompProfile(file string, caps []string) (*specs.LinuxSeccomp, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, errdefs.InvalidArgument("seccomp profile %s: %w", file, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxProfileSize+1))
	if err != nil {
		return nil, errdefs.InvalidArgument("seccomp profile %s: %w", file, err)
	}
	if len(data) > maxProfileSize {
		return nil, errdefs.InvalidArgument("seccomp profile %s: larger than %d bytes", file, maxProfileSize)
	}
	var pf profileFile
	if err := json.Unmarshal(data, &pf); err != nil {
		return nil, errdefs.InvalidArgument("seccomp profile %s: %w", file, err)
	}
	p, err := pf.convert(caps, goarchToSeccomp(runtime.GOARCH))
	if err != nil {
		return nil, errdefs.InvalidArgument("seccomp profile %s: %w", file, err)
	}
	return p, nil
}

func goarchToSeccomp(goarch string) specs.Arch {
	if a := seccompArchitectures(goarch); len(a) > 0 {
		return a[0]
	}
	return ""
}

// convert validates a parsed profile and produces the OCI form for a process
// with the given capabilities on the given native architecture.
func (pf *profileFile) convert(caps []string, native specs.Arch) (*specs.LinuxSeccomp, error) {
	if pf.DefaultAction == "" {
		return nil, fmt.Errorf("defaultAction is missing")
	}
	if !slices.Contains(knownActions, pf.DefaultAction) {
		return nil, fmt.Errorf("defaultAction: unknown action %q", pf.DefaultAction)
	}
	p := &specs.LinuxSeccomp{
		DefaultAction:    pf.DefaultAction,
		DefaultErrnoRet:  pf.DefaultErrnoRet,
		Architectures:    slices.Clone(pf.Architectures),
		Flags:            slices.Clone(pf.Flags),
		ListenerPath:     pf.ListenerPath,
		ListenerMetadata: pf.ListenerMetadata,
	}
	if len(p.Architectures) == 0 {
		for _, am := range pf.ArchMap {
			if am.Arch == native {
				p.Architectures = append([]specs.Arch{am.Arch}, am.SubArches...)
			}
		}
	}
	for i, sc := range pf.Syscalls {
		rule := sc.LinuxSyscall
		if sc.Name != "" {
			rule.Names = append([]string{sc.Name}, rule.Names...)
		}
		if len(rule.Names) == 0 {
			return nil, fmt.Errorf("syscalls[%d]: no names", i)
		}
		if !slices.Contains(knownActions, rule.Action) {
			return nil, fmt.Errorf("syscalls[%d]: unknown action %q", i, rule.Action)
		}
		if sc.applies(caps, native) {
			p.Syscalls = append(p.Syscalls, rule)
		}
	}
	return p, nil
}

// applies evaluates docker-style includes/excludes: every included
// capability must be held, no excluded one may be; the native architecture
// must be included (when arches are listed) and not excluded.
func (sc *profileSyscall) applies(caps []string, native specs.Arch) bool {
	for _, c := range sc.Includes.Caps {
		if n, _ := normalizeCapability(c); !slices.Contains(caps, n) {
			return false
		}
	}
	for _, c := range sc.Excludes.Caps {
		if n, _ := normalizeCapability(c); slices.Contains(caps, n) {
			return false
		}
	}
	if len(sc.Includes.Arches) > 0 && !archListed(sc.Includes.Arches, native) {
		return false
	}
	return !archListed(sc.Excludes.Arches, native)
}

// archListed matches both spellings docker profiles use: "amd64" and
// "SCMP_ARCH_X86_64".
func archListed(list []string, native specs.Arch) bool {
	for _, a := range list {
		if specs.Arch(a) == native || goarchToSeccomp(a) == native {
			return true
		}
	}
	return false
}
