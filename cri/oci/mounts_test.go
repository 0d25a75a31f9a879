package oci

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/cri/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// noResolve stands in for filepath.EvalSymlinks where host paths are made up.
func noResolve(p string) (string, error) { return p, nil }

// sharedDir is a fresh tmpfs mounted shared, as a host path must be for
// mounts that propagate (tests run as root).
func sharedDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		t.Fatalf("make shared: %v", err)
	}
	return dir
}

// Propagation a host path's mount cannot deliver is refused, saying why.
func TestCRIMountsPropagationNeedsSharedMount(t *testing.T) {
	private := t.TempDir()
	if err := unix.Mount(private, private, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(private, unix.MNT_DETACH) })
	if err := unix.Mount("", private, "", unix.MS_PRIVATE, ""); err != nil {
		t.Fatal(err)
	}
	for _, p := range []runtimeapi.MountPropagation{runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL, runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER} {
		_, _, err := criMounts([]*runtimeapi.Mount{{ContainerPath: "/data", HostPath: private, Propagation: p}}, nil, noResolve)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "mounts[0].propagation") || !strings.Contains(err.Error(), "make-rshared "+private) {
			t.Errorf("%v on a private mount: %v; want InvalidArgument saying how to share it", p, err)
		}
	}
}

func TestCRIMountsPropagation(t *testing.T) {
	tests := []struct {
		name     string
		mounts   []*runtimeapi.Mount
		wantOpts [][]string
		wantRoot string
	}{
		{"private rw", []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/srv/data"}},
			[][]string{{"rbind", "rprivate", "rw"}}, ""},
		{"readonly", []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/srv/data", Readonly: true}},
			[][]string{{"rbind", "rprivate", "ro"}}, ""},
		{"host to container", []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/srv/data",
			Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}},
			[][]string{{"rbind", "rslave", "rw"}}, "rslave"},
		{"bidirectional", []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/srv/data",
			Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}},
			[][]string{{"rbind", "rshared", "rw"}}, "rshared"},
		{"shared wins over slave whatever the order", []*runtimeapi.Mount{
			{ContainerPath: "/a", HostPath: "/a", Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
			{ContainerPath: "/b", HostPath: "/b", Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		}, [][]string{{"rbind", "rshared", "rw"}, {"rbind", "rslave", "rw"}}, "rshared"},
		{"recursive read-only and extra options", []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/srv/data",
			Readonly: true, RecursiveReadOnly: true, MountOptions: []string{"noexec"}}},
			[][]string{{"rbind", "rprivate", "ro", "rro", "noexec"}}, ""},
	}
	shared := sharedDir(t)
	inShared := func(p string) (string, error) { return filepath.Join(shared, p), nil }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, root, err := criMounts(tt.mounts, nil, inShared)
			if err != nil {
				t.Fatal(err)
			}
			if root != tt.wantRoot {
				t.Errorf("root propagation = %q, want %q", root, tt.wantRoot)
			}
			for i, m := range got {
				if m.Type != "bind" || !slices.Equal(m.Options, tt.wantOpts[i]) {
					t.Errorf("mount %d = %+v, want bind with %v", i, m, tt.wantOpts[i])
				}
			}
		})
	}
}

func TestCRIMountsOrderParentsFirst(t *testing.T) {
	got, _, err := criMounts([]*runtimeapi.Mount{
		{ContainerPath: "/data/sub/deeper", HostPath: "/x"},
		{ContainerPath: "/data/", HostPath: "/y"},
		{ContainerPath: "/data/sub", HostPath: "/z"},
		{ContainerPath: "/other", HostPath: "/w"},
	}, nil, noResolve)
	if err != nil {
		t.Fatal(err)
	}
	var dsts []string
	for _, m := range got {
		dsts = append(dsts, m.Destination)
	}
	if want := []string{"/data", "/other", "/data/sub", "/data/sub/deeper"}; !slices.Equal(dsts, want) {
		t.Errorf("order = %v, want %v", dsts, want)
	}
}

func TestCRIMountsResolvesSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	got, _, err := criMounts([]*runtimeapi.Mount{{ContainerPath: "/data", HostPath: link}}, nil, filepath.EvalSymlinks)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Source != target {
		t.Errorf("source = %s, want the link's target %s", got[0].Source, target)
	}
	_, _, err = criMounts([]*runtimeapi.Mount{{ContainerPath: "/data", HostPath: filepath.Join(dir, "gone")}},
		nil, filepath.EvalSymlinks)
	wantInvalid(t, err, "mounts[0].host_path", "gone")
}

func TestCRIMountsErrors(t *testing.T) {
	tests := []struct {
		name  string
		mount *runtimeapi.Mount
		words []string
	}{
		{"relative container path", &runtimeapi.Mount{ContainerPath: "data", HostPath: "/x"},
			[]string{"mounts[1].container_path", `"data"`}},
		{"empty container path", &runtimeapi.Mount{HostPath: "/x"}, []string{"mounts[1].container_path"}},
		{"empty host path", &runtimeapi.Mount{ContainerPath: "/data"}, []string{"mounts[1].host_path"}},
		{"relative host path", &runtimeapi.Mount{ContainerPath: "/data", HostPath: "x"}, []string{"mounts[1].host_path"}},
		{"bad propagation", &runtimeapi.Mount{ContainerPath: "/data", HostPath: "/x", Propagation: 7},
			[]string{"mounts[1].propagation"}},
		{"rro without ro", &runtimeapi.Mount{ContainerPath: "/data", HostPath: "/x", RecursiveReadOnly: true},
			[]string{"mounts[1].recursive_read_only"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mounts := []*runtimeapi.Mount{{ContainerPath: "/ok", HostPath: "/ok"}, tt.mount}
			_, _, err := criMounts(mounts, nil, noResolve)
			wantInvalid(t, err, tt.words...)
		})
	}
	_, _, err := criMounts([]*runtimeapi.Mount{{ContainerPath: "/img", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "x"}}}, nil, noResolve)
	if !errors.Is(err, errdefs.ErrUnimplemented) {
		t.Errorf("unmounted image mount: %v, want unimplemented", err)
	}
}

func TestCRIMountsImageVolumes(t *testing.T) {
	img := &runtimeapi.ImageSpec{Image: "x"}
	sources := map[int]string{1: "/vols/1/rootfs/etc"}
	got, _, err := criMounts([]*runtimeapi.Mount{
		{ContainerPath: "/host", HostPath: "/h"},
		{ContainerPath: "/img", Readonly: true, Image: img, ImageSubPath: "etc"},
	}, sources, noResolve)
	if err != nil {
		t.Fatal(err)
	}
	want := specs.Mount{Destination: "/img", Type: "bind", Source: "/vols/1/rootfs/etc",
		Options: []string{"rbind", "rprivate", "ro"}}
	if len(got) != 2 || got[1].Source != want.Source || got[1].Destination != want.Destination ||
		!slices.Equal(got[1].Options, want.Options) {
		t.Errorf("mounts = %+v, want second %+v", got, want)
	}
	for _, tt := range []struct {
		name  string
		mount *runtimeapi.Mount
		words []string
	}{
		{"writable", &runtimeapi.Mount{ContainerPath: "/img", Image: img}, []string{"mounts[0].readonly", "read-only"}},
		{"host path too", &runtimeapi.Mount{ContainerPath: "/img", HostPath: "/h", Readonly: true, Image: img},
			[]string{"mounts[0]", "exclusive"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := criMounts([]*runtimeapi.Mount{tt.mount}, map[int]string{0: "/vols/0/rootfs"}, noResolve)
			wantInvalid(t, err, tt.words...)
		})
	}
}

func TestFileMounts(t *testing.T) {
	all := hostFiles{resolvConf: "/p/resolv.conf", hosts: "/p/hosts", hostname: "/p/hostname", shm: "/p/shm"}
	got := fileMounts(all, true)
	want := map[string]string{"/dev/shm": "/p/shm", "/etc/resolv.conf": "/p/resolv.conf",
		"/etc/hosts": "/p/hosts", "/etc/hostname": "/p/hostname"}
	if len(got) != len(want) {
		t.Fatalf("got %d mounts, want %d: %+v", len(got), len(want), got)
	}
	for _, m := range got {
		if want[m.Destination] != m.Source || m.Type != "bind" {
			t.Errorf("mount %+v", m)
		}
		if m.Destination != "/dev/shm" && !slices.Contains(m.Options, "ro") {
			t.Errorf("%s is writable on a read-only rootfs", m.Destination)
		}
	}
	// No files: only /dev/shm, from the host when the pod uses its IPC,
	// else a private tmpfs.
	got = fileMounts(hostFiles{hostIPC: true}, false)
	if len(got) != 1 || got[0].Source != "/dev/shm" || got[0].Type != "bind" {
		t.Errorf("host IPC: %+v", got)
	}
	got = fileMounts(hostFiles{}, false)
	if len(got) != 1 || got[0].Type != "tmpfs" {
		t.Errorf("no shm: %+v", got)
	}
}

func TestDefaultMounts(t *testing.T) {
	for _, priv := range []bool{false, true} {
		ms := defaultMounts(priv, true)
		var dsts []string
		for _, m := range ms {
			dsts = append(dsts, m.Destination)
			if m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup" {
				if ro := slices.Contains(m.Options, "ro"); ro == priv {
					t.Errorf("privileged=%v: %s options %v", priv, m.Destination, m.Options)
				}
			}
		}
		want := []string{"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup"}
		if !slices.Equal(dsts, want) {
			t.Errorf("destinations = %v, want %v", dsts, want)
		}
	}
	dev := defaultMounts(false, true)[1]
	for _, o := range []string{"nosuid", "strictatime", "mode=755", "size=65536k"} {
		if !slices.Contains(dev.Options, o) {
			t.Errorf("/dev lacks %s: %v", o, dev.Options)
		}
	}
	pts := defaultMounts(false, true)[2]
	for _, o := range []string{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"} {
		if !slices.Contains(pts.Options, o) {
			t.Errorf("/dev/pts lacks %s: %v", o, pts.Options)
		}
	}
}

func TestMergeMounts(t *testing.T) {
	rt := append(defaultMounts(false, true), fileMounts(hostFiles{hosts: "/p/hosts", shm: "/p/shm"}, false)...)
	req := []specs.Mount{
		{Destination: "/etc/hosts", Source: "/mine/hosts", Type: "bind"},
		{Destination: "/dev", Source: "/host/dev", Type: "bind"},
	}
	got := mergeMounts(rt, req)
	var dsts []string
	for _, m := range got {
		dsts = append(dsts, m.Destination)
	}
	want := []string{"/proc", "/sys", "/sys/fs/cgroup", "/etc/hosts", "/dev"}
	if !slices.Equal(dsts, want) {
		t.Errorf("destinations = %v, want %v", dsts, want)
	}
	if got[3].Source != "/mine/hosts" {
		t.Errorf("/etc/hosts from %s, want the request's", got[3].Source)
	}
}
