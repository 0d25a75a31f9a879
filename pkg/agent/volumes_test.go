package agent

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestCheckHostPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tests := []struct {
		path string
		typ  v1.HostPathType
		err  string // "" = accepted
	}{
		{filepath.Join(dir, "anything"), v1.HostPathUnset, ""},
		{filepath.Join(dir, "new/dir"), v1.HostPathDirectoryOrCreate, ""},
		{file, v1.HostPathDirectoryOrCreate, "not a directory"},
		{dir, v1.HostPathDirectory, ""},
		{filepath.Join(dir, "missing"), v1.HostPathDirectory, "no such file"},
		{file, v1.HostPathDirectory, "not of type Directory"},
		{filepath.Join(dir, "sub/new-file"), v1.HostPathFileOrCreate, ""},
		{dir, v1.HostPathFileOrCreate, "not a file"},
		{file, v1.HostPathFile, ""},
		{sock, v1.HostPathSocket, ""},
		{file, v1.HostPathSocket, "not of type Socket"},
		{"/dev/null", v1.HostPathCharDev, ""},
		{file, v1.HostPathCharDev, "not of type CharDevice"},
		{"/dev/null", v1.HostPathBlockDev, "not of type BlockDevice"},
	}
	for _, tt := range tests {
		typ := tt.typ
		err := checkHostPath(&v1.HostPathVolumeSource{Path: tt.path, Type: &typ})
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s as %q: %v", tt.path, tt.typ, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s as %q: error %v, want one saying %q", tt.path, tt.typ, err, tt.err)
		}
	}
	for _, made := range []string{"new/dir", "sub/new-file"} {
		if _, err := os.Stat(filepath.Join(dir, made)); err != nil {
			t.Errorf("%s not created: %v", made, err)
		}
	}
}

func TestBindSubPathStaysInTheVolume(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	podDir := t.TempDir()
	w := &worker{m: &Manager{cfg: Config{PodDir: podDir}}}
	t.Cleanup(func() {
		if err := w.m.removeVolumes("u1"); err != nil {
			t.Error(err)
		}
	})
	volume := t.TempDir()
	if err := os.Symlink("/", filepath.Join(volume, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(volume, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(volume, "data", "f"), []byte("in volume"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A symlink to / inside the volume means the volume's root.
	target, err := w.bindSubPath("u1", volume, "evil/etc", "c/0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "passwd")); err == nil {
		t.Fatal("the sub path bound the host's /etc")
	}
	if _, err := os.Stat(filepath.Join(volume, "etc")); err != nil {
		t.Errorf("the missing sub path was not created inside the volume: %v", err)
	}
	// A plain sub path binds its content; binding again does not stack.
	for range 2 {
		if target, err = w.bindSubPath("u1", volume, "data", "c/1"); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(target, "f")); err != nil || string(b) != "in volume" {
		t.Errorf("bound sub path: %q, %v", b, err)
	}
	if err := w.m.removeVolumes("u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(volume, "data", "f")); err != nil {
		t.Errorf("removing the pod's volumes deleted through a bind: %v", err)
	}
	if _, err := os.Stat(filepath.Join(podDir, "u1")); !os.IsNotExist(err) {
		t.Errorf("pod directory left: %v", err)
	}
}
