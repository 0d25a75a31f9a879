package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"
)

func TestImagesImportListStatusRemove(t *testing.T) {
	e := newEnv(t)
	c := ctx(t)

	// newEnv imported the docker archive; now an OCI layout archive.
	img, err := harness.BusyboxImage(v1.Config{Cmd: []string{"sh"}, Env: []string{"FROM=oci"}})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "oci.tar")
	if err := harness.WriteOCIArchive(archive, "berth.test/oci:2", img); err != nil {
		t.Fatal(err)
	}
	out := e.berthctl("images", "import", archive)
	if !strings.Contains(out, "berth.test/oci:2") {
		t.Errorf("berthctl import printed %q, want the tag", out)
	}

	list, err := e.im.ListImages(c, &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]*runtimeapi.Image{}
	for _, i := range list.GetImages() {
		for _, tag := range i.GetRepoTags() {
			tags[tag] = i
		}
	}
	for _, want := range []string{busybox, "berth.test/oci:2"} {
		if tags[want] == nil || tags[want].GetSize() == 0 || !strings.HasPrefix(tags[want].GetId(), "sha256:") {
			t.Errorf("ListImages has no proper entry for %s: %v", want, tags[want])
		}
	}

	// The OCI image runs, with its own config.
	pod := e.podConfig("oci")
	podID := e.runPod(pod)
	cfg := containerConfig("env", []string{"sh", "-c", "echo $FROM; sleep 3600"})
	cfg.Image.Image = "berth.test/oci:2"
	id := e.start(podID, pod, cfg)
	if out, _, _ := e.exec(id, "sh", "-c", "echo $FROM"); out != "oci\n" {
		t.Errorf("env from the OCI image config = %q, want oci", out)
	}

	st, err := e.im.ImageStatus(c, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: tags[busybox].GetId()}})
	if err != nil || st.GetImage().GetId() != tags[busybox].GetId() {
		t.Errorf("ImageStatus by ID = %v, %v", st, err)
	}
	fs, err := e.im.ImageFsInfo(c, &runtimeapi.ImageFsInfoRequest{})
	if err != nil || len(fs.GetImageFilesystems()) == 0 || fs.GetImageFilesystems()[0].GetUsedBytes().GetValue() == 0 {
		t.Errorf("ImageFsInfo = %v, %v", fs, err)
	}

	// Removing the image under a live container does not break it.
	if _, err := e.im.RemoveImage(c, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: "berth.test/oci:2"}}); err != nil {
		t.Fatal(err)
	}
	st, err = e.im.ImageStatus(c, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "berth.test/oci:2"}})
	if err != nil || st.GetImage() != nil {
		t.Errorf("ImageStatus after removal = %v, %v; want no image, no error", st, err)
	}
	if out, _, _ := e.exec(id, "cat", "/bin/busybox"); len(out) == 0 {
		t.Errorf("container lost its rootfs when its image was removed")
	}
	if _, err := e.im.RemoveImage(c, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: "berth.test/oci:2"}}); err != nil {
		t.Errorf("RemoveImage twice: %v", err)
	}
	e.removePod(podID)
}

func TestImportRejectsBadArchive(t *testing.T) {
	e := newEnv(t)
	before, err := e.im.ListImages(ctx(t), &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "notanimage.tar")
	os.WriteFile(bad, []byte("this is not a tarball"), 0o644)
	out, err := exec.Command(filepath.Join(e.d.Bin, "berthctl"), "--cri-socket", e.d.Socket, "images", "import", bad).CombinedOutput()
	if err == nil {
		t.Fatalf("import of garbage succeeded: %s", out)
	}
	if !strings.Contains(string(out), bad) {
		t.Errorf("error %q does not name the file", out)
	}
	list, err := e.im.ListImages(ctx(t), &runtimeapi.ListImagesRequest{})
	if err != nil || len(list.GetImages()) != len(before.GetImages()) {
		t.Errorf("a failed import changed the image list: %v, %v", list, err)
	}
}

// The built-in pause image is listed, pinned and cannot be removed.
func TestPauseImageIsPinned(t *testing.T) {
	e := newEnv(t)
	st, err := e.im.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "berth.local/pause:builtin"}, Verbose: true})
	if err != nil || st.GetImage() == nil {
		t.Fatalf("ImageStatus of the pause image = %v, %v", st, err)
	}
	if !st.GetImage().GetPinned() {
		t.Error("the pause image is not pinned")
	}
	if !strings.Contains(st.GetInfo()["info"], `"/pause"`) {
		t.Errorf("verbose info lacks the image config: %v", st.GetInfo())
	}
	_, err = e.im.RemoveImage(ctx(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: st.GetImage().GetId()}})
	wantCode(t, "RemoveImage of the pause image", err, codes.FailedPrecondition, "pinned and cannot be removed: it is built into berthd")
}

// What berthctl exports, a fresh node imports as the same image.
func TestExportImportRoundTrip(t *testing.T) {
	e := newEnv(t)
	src, err := e.im.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: busybox}})
	if err != nil || src.GetImage() == nil {
		t.Fatal(err)
	}
	for _, format := range []string{"docker", "oci"} {
		out := filepath.Join(t.TempDir(), format+".tar")
		e.berthctl("images", "export", "--format", format, "-o", out, busybox)

		other := newEnv(t) // a second node, with its own store
		if _, err := other.im.RemoveImage(ctx(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}}); err != nil {
			t.Fatal(err)
		}
		other.berthctl("images", "import", out)
		got, err := other.im.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: busybox}})
		if err != nil || got.GetImage().GetId() != src.GetImage().GetId() {
			t.Errorf("%s round trip: image %v, %v; want ID %s", format, got.GetImage(), err, src.GetImage().GetId())
		}
	}
}

// berthctl images list shows what crictl images shows.
func TestImagesList(t *testing.T) {
	e := newEnv(t)
	src, err := e.im.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: busybox}})
	if err != nil || src.GetImage() == nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(src.GetImage().GetId(), "sha256:")[:13]
	out := e.berthctl("images", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "IMAGE ") || !slices.ContainsFunc(lines, func(l string) bool {
		f := strings.Fields(l)
		return len(f) == 4 && f[0] == "berth.test/busybox" && f[1] == "1" && f[2] == id
	}) {
		t.Errorf("berthctl images list has no line for %s (%s):\n%s", busybox, id, out)
	}
	if wide := e.berthctl("images", "list", "-o", "wide"); !strings.Contains(wide, "PINNED") {
		t.Errorf("-o wide:\n%s", wide)
	}
	if js := e.berthctl("images", "ls", "-o", "json"); !strings.Contains(js, `"repoTags"`) || !strings.Contains(js, src.GetImage().GetId()) {
		t.Errorf("-o json:\n%s", js)
	}
}
