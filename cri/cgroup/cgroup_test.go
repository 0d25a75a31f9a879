package cgroup

import "testing"

func TestPaths(t *testing.T) {
	tests := []struct {
		driver         Driver
		parent, id     string
		wantPath, want string
	}{
		{Cgroupfs, "/kubepods/besteffort/pod1", "abc", "/kubepods/besteffort/pod1/abc", "/kubepods/besteffort/pod1/abc"},
		{Systemd, "kubepods-besteffort-pod1.slice", "abc", "kubepods-besteffort-pod1.slice:berth:abc",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/berth-abc.scope"},
		// A path of slices, as kubelet and critest may give it: the last
		// names the slice.
		{Systemd, "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice", "abc", "kubepods-besteffort-pod1.slice:berth:abc",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/berth-abc.scope"},
		{Systemd, "/test.slice", "abc", "test.slice:berth:abc", "/test.slice/berth-abc.scope"},
	}
	for _, tt := range tests {
		p := tt.driver.Path(tt.parent, tt.id)
		if p != tt.wantPath {
			t.Errorf("%s.Path = %q, want %q", tt.driver, p, tt.wantPath)
		}
		if got := tt.driver.Dir(p); got != tt.want {
			t.Errorf("%s.Dir(%q) = %q, want %q", tt.driver, p, got, tt.want)
		}
	}
}

func TestCheckParent(t *testing.T) {
	for _, bad := range []struct {
		d Driver
		p string
	}{{Cgroupfs, "relative"}, {Cgroupfs, "/a/../../etc"}, {Systemd, "/kubepods"}} {
		if err := bad.d.CheckParent(bad.p); err == nil {
			t.Errorf("%s.CheckParent(%q) accepted a bad parent", bad.d, bad.p)
		}
	}
	if err := Cgroupfs.CheckParent("/kubepods/pod1"); err != nil {
		t.Error(err)
	}
}
