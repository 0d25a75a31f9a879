package oci

import (
	"os"
	"path/filepath"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRequestedDevices(t *testing.T) {
	devs, rules, err := requestedDevices([]*runtimeapi.Device{
		{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "rw"},
		{HostPath: "/dev/zero"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 || len(rules) != 2 {
		t.Fatalf("devices %+v rules %+v", devs, rules)
	}
	null := devs[0]
	if null.Path != "/dev/mynull" || null.Type != "c" || null.Major != 1 || null.Minor != 3 {
		t.Errorf("null = %+v, want c 1:3 at /dev/mynull", null)
	}
	if null.FileMode == nil || *null.FileMode&0o777 == 0 || null.UID == nil || null.GID == nil {
		t.Errorf("null lacks mode/owner: %+v", null)
	}
	r := rules[0]
	if !r.Allow || r.Type != "c" || *r.Major != 1 || *r.Minor != 3 || r.Access != "rw" {
		t.Errorf("rule = %+v", r)
	}
	if devs[1].Path != "/dev/zero" || rules[1].Access != "rwm" {
		t.Errorf("zero = %+v %+v, want same path, rwm", devs[1], rules[1])
	}
}

func TestRequestedDevicesErrors(t *testing.T) {
	regular := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		dev   *runtimeapi.Device
		words []string
	}{
		{"no host path", &runtimeapi.Device{ContainerPath: "/dev/x"}, []string{"devices[0].host_path"}},
		{"missing", &runtimeapi.Device{HostPath: "/dev/does-not-exist"}, []string{"devices[0].host_path", "does-not-exist"}},
		{"not a device", &runtimeapi.Device{HostPath: regular}, []string{"devices[0].host_path", "not a device"}},
		{"relative container path", &runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "dev/null"},
			[]string{"devices[0].container_path"}},
		{"bad permissions", &runtimeapi.Device{HostPath: "/dev/null", Permissions: "rwx"},
			[]string{"devices[0].permissions", "rwx"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := requestedDevices([]*runtimeapi.Device{tt.dev})
			wantInvalid(t, err, tt.words...)
		})
	}
}

func TestHostDevices(t *testing.T) {
	devs := hostDevices("/dev")
	seen := map[string]bool{}
	for _, d := range devs {
		seen[d.Path] = true
		if d.Type != "c" && d.Type != "b" {
			t.Errorf("%s has type %q", d.Path, d.Type)
		}
	}
	if !seen["/dev/null"] {
		t.Errorf("/dev/null missing from %d host devices", len(devs))
	}
	for _, p := range []string{"/dev/console", "/dev/ptmx", "/dev/pts/ptmx"} {
		if seen[p] {
			t.Errorf("%s should be left to runc", p)
		}
	}
	if got := hostDevices(filepath.Join(t.TempDir(), "none")); len(got) != 0 {
		t.Errorf("missing dir gave %v", got)
	}
}
