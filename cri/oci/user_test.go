package oci

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
)

func TestResolveUser(t *testing.T) {
	i64 := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	tests := []struct {
		name      string
		sc        *runtimeapi.LinuxContainerSecurityContext
		imageUser string
		want      processUser
	}{
		{"default is root", nil, "", processUser{uid: 0, gid: 0, home: "/root"}},
		{"image user by name", nil, "alice",
			processUser{uid: 1000, gid: 1000, additional: []uint32{10, 29}, home: "/home/alice"}},
		{"image uid with passwd entry", nil, "1001",
			processUser{uid: 1001, gid: 1001, additional: []uint32{10, 44}, home: "/home/bob"}},
		{"image uid without entry", nil, "4000", processUser{uid: 4000, gid: 0}},
		{"image name:group", nil, "alice:audio",
			processUser{uid: 1000, gid: 29, additional: []uint32{10}, home: "/home/alice"}},
		{"image uid:gid", nil, "4000:4001", processUser{uid: 4000, gid: 4001}},
		{"entry without home", nil, "nohome", processUser{uid: 1002, gid: 1002}},
		{"run_as_user overrides image", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1)}, "alice",
			processUser{uid: 1, gid: 1, home: "/usr/sbin"}},
		{"run_as_username", &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "bob"}, "",
			processUser{uid: 1001, gid: 1001, additional: []uint32{10, 44}, home: "/home/bob"}},
		{"run_as_user and group", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1000), RunAsGroup: i64(5)}, "",
			processUser{uid: 1000, gid: 5, additional: []uint32{10, 29}, home: "/home/alice"}},
		{"run_as_username and group", &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "alice", RunAsGroup: i64(7)}, "",
			processUser{uid: 1000, gid: 7, additional: []uint32{10, 29}, home: "/home/alice"}},
		{"supplemental groups merge", &runtimeapi.LinuxContainerSecurityContext{
			RunAsUsername: "alice", SupplementalGroups: []int64{2000, 10, 1000}}, "",
			processUser{uid: 1000, gid: 1000, additional: []uint32{10, 29, 2000}, home: "/home/alice"}},
		{"supplemental groups strict", &runtimeapi.LinuxContainerSecurityContext{
			RunAsUsername: "alice", SupplementalGroups: []int64{2000},
			SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Strict}, "",
			processUser{uid: 1000, gid: 1000, additional: []uint32{2000}, home: "/home/alice"}},
	}
	rootfs := writeRootfs(t, testPasswd, testGroup)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveUser(rootfs, tt.sc, tt.imageUser)
			if err != nil {
				t.Fatal(err)
			}
			if got.uid != tt.want.uid || got.gid != tt.want.gid || got.home != tt.want.home ||
				!slices.Equal(got.additional, tt.want.additional) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResolveUserErrors(t *testing.T) {
	rootfs := writeRootfs(t, testPasswd, testGroup)
	tests := []struct {
		name      string
		sc        *runtimeapi.LinuxContainerSecurityContext
		imageUser string
		words     []string
	}{
		{"unknown image user", nil, "mallory", []string{`"mallory"`, "USER"}},
		{"unknown username", &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "eve"}, "",
			[]string{`"eve"`, "run_as_username"}},
		{"unknown group", nil, "alice:nogroup", []string{`"nogroup"`}},
		{"both user fields", &runtimeapi.LinuxContainerSecurityContext{
			RunAsUser: &runtimeapi.Int64Value{Value: 1}, RunAsUsername: "bob"}, "", []string{"mutually exclusive"}},
		{"negative uid", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: &runtimeapi.Int64Value{Value: -1}}, "",
			[]string{"run_as_user"}},
		{"negative group", &runtimeapi.LinuxContainerSecurityContext{SupplementalGroups: []int64{-5}}, "",
			[]string{"supplemental_groups[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolveUser(rootfs, tt.sc, tt.imageUser)
			wantInvalid(t, err, tt.words...)
		})
	}
}

func TestResolveUserNoEtc(t *testing.T) {
	rootfs := writeRootfs(t, "", "")
	got, err := resolveUser(rootfs, nil, "123:456")
	if err != nil || got.uid != 123 || got.gid != 456 || got.home != "" {
		t.Fatalf("got %+v, %v", got, err)
	}
	_, err = resolveUser(rootfs, nil, "alice")
	wantInvalid(t, err, "alice")
}

// An image is untrusted: its /etc/passwd may be a symlink aiming at the
// host's files. Resolution must stay inside the rootfs.
func TestResolveUserSymlinkCannotEscape(t *testing.T) {
	for _, target := range []string{"relative", "absolute"} {
		t.Run(target, func(t *testing.T) {
			dir := t.TempDir()
			hostFile := filepath.Join(dir, "host-passwd")
			if err := os.WriteFile(hostFile, []byte("hostonly:x:777:777::/host:/bin/sh\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			rootfs := filepath.Join(dir, "rootfs")
			if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			link := "../../host-passwd"
			if target == "absolute" {
				link = hostFile
			}
			if err := os.Symlink(link, filepath.Join(rootfs, "etc", "passwd")); err != nil {
				t.Fatal(err)
			}
			_, err := resolveUser(rootfs, nil, "hostonly")
			wantInvalid(t, err, "hostonly")
			// The host's real /etc/passwd is just as unreachable: inside the
			// rootfs this link points at itself.
			if err := os.Remove(filepath.Join(rootfs, "etc", "passwd")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/etc/passwd", filepath.Join(rootfs, "etc", "passwd")); err != nil {
				t.Fatal(err)
			}
			got, err := resolveUser(rootfs, nil, "0")
			if err == nil && got.home != "" {
				t.Fatalf("root resolved to %+v, %v: the host's /etc/passwd was read", got, err)
			}
		})
	}
}

// A symlink that stays inside the rootfs is followed as the container
// would see it.
func TestResolveUserSymlinkInsideRootfs(t *testing.T) {
	rootfs := writeRootfs(t, "", testGroup)
	if err := os.MkdirAll(filepath.Join(rootfs, "usr", "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "usr", "lib", "passwd"), []byte(testPasswd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/lib/passwd", filepath.Join(rootfs, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	got, err := resolveUser(rootfs, nil, "alice")
	if err != nil || got.uid != 1000 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// A FIFO planted at /etc/passwd must not block spec building.
func TestResolveUserRejectsFIFO(t *testing.T) {
	rootfs := writeRootfs(t, "", "")
	if err := unix.Mkfifo(filepath.Join(rootfs, "etc", "passwd"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err := resolveUser(rootfs, nil, "alice")
	wantInvalid(t, err, "/etc/passwd", "not a regular file")
}

func TestRunAsGroupWithoutUserIsRefused(t *testing.T) {
	rootfs := writeRootfs(t, testPasswd, testGroup)
	_, err := resolveUser(rootfs, &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: &runtimeapi.Int64Value{Value: 7}}, "alice")
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "run_as_group") {
		t.Fatalf("err = %v, want InvalidArgument naming run_as_group", err)
	}
}
