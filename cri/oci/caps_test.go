package oci

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berth-project/berth/cri/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// requireHostCaps skips a test when this process lacks caps it needs to
// grant.
func requireHostCaps(t *testing.T, caps ...string) {
	t.Helper()
	for _, c := range caps {
		if !hostBoundingSet()[c] {
			t.Skipf("this process's bounding set lacks %s", c)
		}
	}
}

func TestResolveCapabilities(t *testing.T) {
	requireHostCaps(t, "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE")
	def := DefaultCapabilities()
	without := func(drop ...string) []string {
		return slices.DeleteFunc(DefaultCapabilities(), func(c string) bool { return slices.Contains(drop, c) })
	}
	tests := []struct {
		name              string
		add, drop, amb    []string
		want, wantAmbient []string
	}{
		{name: "defaults", want: def},
		{name: "add short lower-case name", add: []string{"sys_admin"}, want: append(DefaultCapabilities(), "CAP_SYS_ADMIN")},
		{name: "add prefixed mixed case", add: []string{"Cap_Net_Admin"}, want: append(DefaultCapabilities(), "CAP_NET_ADMIN")},
		{name: "add existing is a no-op", add: []string{"CHOWN"}, want: def},
		{name: "drop", drop: []string{"NET_RAW", "cap_mknod"}, want: without("CAP_NET_RAW", "CAP_MKNOD")},
		{name: "drop ALL", drop: []string{"all"}, want: nil},
		{name: "drop ALL then add", drop: []string{"ALL"}, add: []string{"NET_BIND_SERVICE"},
			want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "add ALL", add: []string{"ALL"}, want: availableCapabilities()},
		{name: "add ALL drop one", add: []string{"ALL"}, drop: []string{"SYS_ADMIN"},
			want: slices.DeleteFunc(availableCapabilities(), func(c string) bool { return c == "CAP_SYS_ADMIN" })},
		{name: "add and drop the same: drop wins", add: []string{"SYS_PTRACE"}, drop: []string{"SYS_PTRACE"}, want: def},
		{name: "ambient", amb: []string{"NET_ADMIN"}, want: append(DefaultCapabilities(), "CAP_NET_ADMIN"),
			wantAmbient: []string{"CAP_NET_ADMIN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveCapabilities(&runtimeapi.Capability{
				AddCapabilities: tt.add, DropCapabilities: tt.drop, AddAmbientCapabilities: tt.amb,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.granted, tt.want) {
				t.Errorf("granted = %v, want %v", got.granted, tt.want)
			}
			if !slices.Equal(got.ambient, tt.wantAmbient) {
				t.Errorf("ambient = %v, want %v", got.ambient, tt.wantAmbient)
			}
			s := got.toSpec()
			if !slices.Equal(s.Bounding, tt.want) || !slices.Equal(s.Effective, tt.want) ||
				!slices.Equal(s.Permitted, tt.want) {
				t.Errorf("spec sets differ from granted: %+v", s)
			}
			if !slices.Equal(s.Inheritable, tt.wantAmbient) || !slices.Equal(s.Ambient, tt.wantAmbient) {
				t.Errorf("inheritable/ambient = %v/%v, want %v", s.Inheritable, s.Ambient, tt.wantAmbient)
			}
		})
	}
}

func TestResolveCapabilitiesErrors(t *testing.T) {
	_, err := resolveCapabilities(&runtimeapi.Capability{AddCapabilities: []string{"CAP_FLY"}})
	wantInvalid(t, err, "add_capabilities", "CAP_FLY")
	_, err = resolveCapabilities(&runtimeapi.Capability{DropCapabilities: []string{"teleport"}})
	wantInvalid(t, err, "drop_capabilities", "teleport")
	_, err = resolveCapabilities(&runtimeapi.Capability{AddAmbientCapabilities: []string{"ALL"}})
	wantInvalid(t, err, "add_ambient_capabilities")
}

// A capability the runtime does not hold itself cannot be granted; say so
// instead of letting runc fail with EPERM.
func TestResolveCapabilitiesMissingOnHost(t *testing.T) {
	missing := ""
	for _, c := range allCapabilities {
		if !hostBoundingSet()[c] {
			missing = c
			break
		}
	}
	if missing == "" {
		t.Skip("this process holds every capability")
	}
	_, err := resolveCapabilities(&runtimeapi.Capability{AddCapabilities: []string{missing}})
	wantClass(t, err, errdefs.ErrFailedPrecondition, missing)
	got, err := resolveCapabilities(&runtimeapi.Capability{AddCapabilities: []string{"ALL"}})
	if err != nil || slices.Contains(got.granted, missing) {
		t.Errorf("ALL = %v, %v; want all but %s", got.granted, err, missing)
	}
}

func TestReadBoundingSet(t *testing.T) {
	file := filepath.Join(t.TempDir(), "status")
	// CHOWN (0), KILL (5) and SYS_ADMIN (21).
	content := "Name:\tx\nCapPrm:\t0000000000000000\nCapBnd:\t0000000000200021\n"
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := readBoundingSet(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != 3 || !set["CAP_CHOWN"] || !set["CAP_KILL"] || !set["CAP_SYS_ADMIN"] {
		t.Errorf("set = %v", set)
	}
	if err := os.WriteFile(file, []byte("Name:\tx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readBoundingSet(file); err == nil {
		t.Error("a status without CapBnd parsed")
	}
}

func TestAllCapabilitiesInBitOrder(t *testing.T) {
	// Spot-check the table against the kernel's numbering.
	for name, bit := range map[string]int{
		"CAP_CHOWN": 0, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21, "CAP_SYS_RESOURCE": 24,
		"CAP_AUDIT_WRITE": 29, "CAP_SYSLOG": 34, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
	} {
		if allCapabilities[bit] != name {
			t.Errorf("allCapabilities[%d] = %s, want %s", bit, allCapabilities[bit], name)
		}
	}
}
