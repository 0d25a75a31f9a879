package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"
)

// withImageVolume mounts image ref (or its subPath) read-only at path.
func withImageVolume(ref, path, subPath string, readonly bool) ctrOpt {
	return func(c *runtimeapi.ContainerConfig) {
		c.Mounts = append(c.Mounts, &runtimeapi.Mount{
			ContainerPath: path, Readonly: readonly, ImageSubPath: subPath,
			Image: &runtimeapi.ImageSpec{Image: ref, UserSpecifiedImage: ref},
		})
	}
}

// imageVolumeMounts are the image volume mounts berthd has below its directory.
func imageVolumeMounts(e *env) []string {
	var out []string
	for _, m := range harness.MountsBelow(e.d.Dir) {
		if strings.Contains(m, "/imagevols/") {
			out = append(out, m)
		}
	}
	return out
}

func TestImageVolume(t *testing.T) {
	e := newEnv(t)
	const marked = "berth.test/imgvol:1"
	img, err := harness.MarkedImage("imgvol")
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "imgvol.tar")
	if err := harness.WriteDockerArchive(archive, marked, img); err != nil {
		t.Fatal(err)
	}
	e.berthctl("images", "import", archive)
	st, err := e.im.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: marked}})
	if err != nil || st.GetImage() == nil {
		t.Fatalf("ImageStatus %s: %v, %v", marked, st, err)
	}
	markedID := st.GetImage().GetId()

	pod := e.podConfig("imgvol")
	podID := e.runPod(pod)

	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			opt  ctrOpt
			code codes.Code
			want string
		}{
			{"writable", withImageVolume(marked, "/vol", "", false), codes.InvalidArgument, "read-only"},
			{"missing image", withImageVolume("berth.test/absent:1", "/vol", "", true), codes.NotFound, "berth.test/absent:1"},
			{"missing sub path", withImageVolume(marked, "/vol", "not-existing", true), codes.NotFound, "not-existing"},
			{"escaping sub path", withImageVolume(marked, "/vol", "../etc", true), codes.InvalidArgument, "../etc"},
			{"absolute sub path", withImageVolume(marked, "/vol", "/etc", true), codes.InvalidArgument, "/etc"},
		} {
			_, err := e.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{
				PodSandboxId: podID, SandboxConfig: pod,
				Config: containerConfig("refused", []string{"sleep", "3600"}, tt.opt),
			})
			wantCode(t, tt.name, err, tt.code, tt.want)
			if left := imageVolumeMounts(e); len(left) > 0 {
				t.Errorf("%s: mounts left behind: %v", tt.name, left)
			}
		}
	})

	id := e.start(podID, pod, containerConfig("vols", []string{"sleep", "3600"},
		withImageVolume(marked, "/vol", "", true),
		withImageVolume(marked, "/sub", "etc", true),
		withImageVolume(busybox, "/one", "bin", true), // an image with a single layer
	))
	if out, errOut, code := e.exec(id, "cat", "/vol"+harness.MarkFile); code != 0 || out != "imgvol\n" {
		t.Errorf("cat /vol%s = %q, %q, %d; want the mark", harness.MarkFile, out, errOut, code)
	}
	if out, errOut, code := e.exec(id, "cat", "/sub/"+filepath.Base(harness.MarkFile)); code != 0 || out != "imgvol\n" {
		t.Errorf("cat through sub path = %q, %q, %d; want the mark", out, errOut, code)
	}
	if _, _, code := e.exec(id, "ls", "/sub/etc"); code == 0 {
		t.Error("/sub/etc exists: the sub path was ignored")
	}
	if out, errOut, code := e.exec(id, "/vol/bin/busybox", "echo", "ran"); code != 0 || out != "ran\n" {
		t.Errorf("running a binary of the image volume = %q, %q, %d", out, errOut, code)
	}
	if _, errOut, code := e.exec(id, "ls", "/one/busybox"); code != 0 {
		t.Errorf("single-layer image volume: ls /one/busybox: %q, %d", errOut, code)
	}
	for _, p := range []string{"/vol/new", "/vol" + harness.MarkFile, "/sub/new", "/one/new"} {
		if _, _, code := e.exec(id, "touch", p); code == 0 {
			t.Errorf("touch %s succeeded on a read-only image volume", p)
		}
	}

	var found bool
	for _, m := range e.status(id).GetMounts() {
		if m.GetContainerPath() == "/vol" {
			found = true
			if m.GetImage().GetImage() != marked || m.GetImage().GetImageRef() != markedID {
				t.Errorf("status mount image = %v, want image %s, image_ref %s", m.GetImage(), marked, markedID)
			}
		}
	}
	if !found {
		t.Errorf("ContainerStatus mounts lack /vol: %v", e.status(id).GetMounts())
	}
	if len(imageVolumeMounts(e)) != 3 {
		t.Errorf("image volume mounts = %v, want 3", imageVolumeMounts(e))
	}

	if _, err := e.rt.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	if left := imageVolumeMounts(e); len(left) > 0 {
		t.Errorf("mounts left after RemoveContainer: %v", left)
	}
	e.removePod(podID)
}
