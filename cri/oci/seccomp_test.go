package oci

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestDefaultProfileBlocks(t *testing.T) {
	p := DefaultSeccompProfile(DefaultCapabilities())
	if p.DefaultAction != specs.ActAllow {
		t.Fatalf("defaultAction = %s, want allow (deny-list)", p.DefaultAction)
	}
	for _, name := range []string{
		"mount", "umount2", "pivot_root", "unshare", "setns", "open_tree", "fsopen",
		"kexec_load", "init_module", "finit_module", "delete_module", "reboot",
		"bpf", "perf_event_open", "add_key", "keyctl", "request_key",
		"ptrace", "process_vm_readv", "process_vm_writev", "userfaultfd",
		"settimeofday", "clock_settime", "swapon", "acct", "syslog",
		"open_by_handle_at", "iopl", "ioperm", "_sysctl", "kcmp",
	} {
		act, errno := blockedBy(p, name)
		if act != specs.ActErrno || errno != uint(unix.EPERM) {
			t.Errorf("%s: action %q errno %d, want EPERM", name, act, errno)
		}
	}
	for _, name := range []string{"read", "clone", "personality", "chown", "socket"} {
		if act, _ := blockedBy(p, name); act != "" {
			t.Errorf("%s is blocked by %s", name, act)
		}
	}
	if act, errno := blockedBy(p, "clone3"); act != specs.ActErrno || errno != uint(unix.ENOSYS) {
		t.Errorf("clone3: %q %d, want ENOSYS so libc falls back to clone", act, errno)
	}
	newUser := slices.ContainsFunc(p.Syscalls, func(r specs.LinuxSyscall) bool {
		return slices.Contains(r.Names, "clone") && len(r.Args) == 1 &&
			r.Args[0].Op == specs.OpMaskedEqual && r.Args[0].Value == unix.CLONE_NEWUSER &&
			r.Args[0].ValueTwo == unix.CLONE_NEWUSER
	})
	if !newUser {
		t.Error("clone(CLONE_NEWUSER) is not blocked")
	}
	if len(p.Architectures) == 0 {
		t.Error("no architectures: the other ABIs of this machine would bypass the list")
	}
}

func TestDefaultProfileCapabilityExemptions(t *testing.T) {
	tests := []struct {
		cap       string
		unblocked []string
		stillOff  []string
	}{
		{"CAP_SYS_ADMIN", []string{"mount", "umount2", "unshare", "setns", "pivot_root", "bpf", "clone3"},
			[]string{"ptrace", "init_module", "keyctl"}},
		{"CAP_SYS_PTRACE", []string{"ptrace", "process_vm_readv", "process_vm_writev", "kcmp"}, []string{"mount"}},
		{"CAP_SYS_MODULE", []string{"init_module", "finit_module", "delete_module"}, []string{"create_module"}},
		{"CAP_SYS_TIME", []string{"settimeofday", "clock_settime", "adjtimex"}, []string{"mount"}},
		{"CAP_SYS_BOOT", []string{"reboot", "kexec_load"}, []string{"mount"}},
		{"CAP_SYSLOG", []string{"syslog"}, []string{"mount"}},
		{"CAP_SYS_PACCT", []string{"acct"}, []string{"mount"}},
		{"CAP_BPF", []string{"bpf"}, []string{"mount", "perf_event_open"}},
	}
	for _, tt := range tests {
		t.Run(tt.cap, func(t *testing.T) {
			p := DefaultSeccompProfile(append(DefaultCapabilities(), tt.cap))
			for _, name := range tt.unblocked {
				if act, _ := blockedBy(p, name); act != "" {
					t.Errorf("%s still blocked with %s", name, tt.cap)
				}
			}
			for _, name := range tt.stillOff {
				if act, _ := blockedBy(p, name); act == "" {
					t.Errorf("%s unblocked by %s", name, tt.cap)
				}
			}
		})
	}
	p := DefaultSeccompProfile([]string{"CAP_SYS_ADMIN"})
	if slices.ContainsFunc(p.Syscalls, func(r specs.LinuxSyscall) bool { return slices.Contains(r.Names, "clone") }) {
		t.Error("CAP_SYS_ADMIN still restricts clone flags")
	}
}

func TestSeccompFor(t *testing.T) {
	profile := writeProfile(t, `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}`)
	tests := []struct {
		name    string
		profile *runtimeapi.SecurityProfile
		path    string
		want    string // "none", "default" or "localhost"
	}{
		{"nothing requested", nil, "", "none"},
		{"unconfined", &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, "", "none"},
		{"runtime default", &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, "", "default"},
		{"localhost", &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: profile}, "", "localhost"},
		{"typed profile wins over path", &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
			"runtime/default", "none"},
		{"path runtime/default", nil, "runtime/default", "default"},
		{"path docker/default", nil, "docker/default", "default"},
		{"path unconfined", nil, "unconfined", "none"},
		{"path localhost", nil, "localhost/" + profile, "localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := seccompFor(tt.profile, tt.path, "linux.security_context", DefaultCapabilities())
			if err != nil {
				t.Fatal(err)
			}
			var kind string
			switch {
			case got == nil:
				kind = "none"
			case got.DefaultAction == specs.ActAllow:
				kind = "default"
			case got.DefaultAction == specs.ActErrno:
				kind = "localhost"
			}
			if kind != tt.want {
				t.Errorf("got %s profile %+v, want %s", kind, got, tt.want)
			}
		})
	}
}

func TestSeccompForErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.json")
	bad := writeProfile(t, `{"defaultAction": `)
	noDefault := writeProfile(t, `{"syscalls":[]}`)
	badAction := writeProfile(t, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_EXPLODE"}]}`)
	noNames := writeProfile(t, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]}`)
	local := func(ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: ref}
	}
	tests := []struct {
		name    string
		profile *runtimeapi.SecurityProfile
		path    string
		words   []string
	}{
		{"missing file", local(missing), "", []string{missing}},
		{"missing file by path", nil, "localhost/" + missing, []string{missing}},
		{"relative ref", local("profiles/x.json"), "", []string{"localhost_ref", "profiles/x.json"}},
		{"relative path", nil, "localhost/x.json", []string{"seccomp_profile_path"}},
		{"unknown path", nil, "strict", []string{"seccomp_profile_path", "strict"}},
		{"bad json", local(bad), "", []string{bad}},
		{"no defaultAction", local(noDefault), "", []string{noDefault, "defaultAction"}},
		{"bad action", local(badAction), "", []string{badAction, "syscalls[0]", "SCMP_ACT_EXPLODE"}},
		{"no names", local(noNames), "", []string{noNames, "syscalls[0]"}},
		{"unknown type", &runtimeapi.SecurityProfile{ProfileType: 9}, "", []string{"profile_type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := seccompFor(tt.profile, tt.path, "linux.security_context", nil)
			wantInvalid(t, err, tt.words...)
		})
	}
}

// Docker-style profiles carry archMap, "name" and includes/excludes; rules
// apply only when their conditions hold for this process.
func TestDockerStyleProfile(t *testing.T) {
	pf := profileFile{}
	data := `{
	  "defaultAction": "SCMP_ACT_ERRNO",
	  "defaultErrnoRet": 1,
	  "archMap": [
	    {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
	    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
	  ],
	  "syscalls": [
	    {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
	    {"name": "legacy", "action": "SCMP_ACT_ALLOW"},
	    {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
	    {"names": ["chown"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
	    {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
	    {"names": ["not_on_x86"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["SCMP_ARCH_X86_64"]}}
	  ]
	}`
	if err := json.Unmarshal([]byte(data), &pf); err != nil {
		t.Fatal(err)
	}
	names := func(p *specs.LinuxSeccomp) []string {
		var out []string
		for _, r := range p.Syscalls {
			out = append(out, r.Names...)
		}
		return out
	}
	p, err := pf.convert([]string{"CAP_CHOWN"}, specs.ArchX86_64)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"read", "write", "legacy", "chown", "arch_prctl"}; !slices.Equal(names(p), want) {
		t.Errorf("syscalls = %v, want %v", names(p), want)
	}
	if want := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}; !slices.Equal(p.Architectures, want) {
		t.Errorf("architectures = %v, want %v", p.Architectures, want)
	}
	if p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != 1 {
		t.Errorf("defaultErrnoRet lost")
	}
	p, err = pf.convert([]string{"CAP_SYS_ADMIN"}, specs.ArchAARCH64)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"read", "write", "legacy", "mount", "not_on_x86"}; !slices.Equal(names(p), want) {
		t.Errorf("syscalls = %v, want %v", names(p), want)
	}
	if want := []specs.Arch{specs.ArchAARCH64, specs.ArchARM}; !slices.Equal(p.Architectures, want) {
		t.Errorf("architectures = %v, want %v", p.Architectures, want)
	}
}

func writeProfile(t *testing.T, content string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}
