package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cri/errdefs"
)

// baseLayer has one of everything a layer can hold.
func baseLayer(t *testing.T) v1.Layer {
	hello := file("etc/hello", "hello\n")
	hello.mode, hello.uid, hello.gid = 0o640, 1000, 1001
	tool := file("usr/bin/tool", "#!/bin/tool\n")
	tool.mode = 0o4755
	null := entry{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3}
	fifo := entry{name: "run/fifo", typ: tar.TypeFifo, mode: 0o600} // run/ is implicit
	caps := file("caps", "x")
	caps.xattrs = map[string]string{"user.berth": "yes", "trusted.overlay.redirect": "/etc"}
	return layerOf(t,
		dir("./"),
		dir("etc/"), hello, file("etc/motd", "motd\n"),
		dir("usr/"), dir("usr/bin/"), tool, hardlink("usr/bin/tool2", "usr/bin/tool"),
		symlink("bin", "usr/bin"),
		dir("dev/"), null, fifo, caps,
		dir("opq/"), file("opq/old", "old\n"),
		file("/abs/file", "contained\n"),
	)
}

// upperLayer deletes etc/hello, makes opq/ opaque and adds files.
func upperLayer(t *testing.T, extra string) v1.Layer {
	return layerOf(t,
		dir("etc/"), file("etc/.wh.hello", ""), file("etc/added", extra),
		dir("opq/"), file("opq/.wh..wh..opq", ""), file("opq/new", "new\n"),
	)
}

var testConfig = v1.Config{
	Env:        []string{"PATH=/usr/bin:/bin", "GREETING=hi"},
	Entrypoint: []string{"/bin/tool"},
	Cmd:        []string{"--serve"},
	User:       "1000:1001",
	WorkingDir: "/opq",
	StopSignal: "SIGQUIT",
	Labels:     map[string]string{"app": "test"},
	Volumes:    map[string]struct{}{"/data": {}},
}

func TestImportDockerArchiveUnpacksLayers(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	img := buildImage(t, testConfig, baseLayer(t), upperLayer(t, "one"))
	path := writeDockerArchive(t, map[string]v1.Image{
		"busybox:1.36":       img,
		"localhost:5000/x:y": img,
	})
	got := mustImport(t, s, path)
	if len(got) != 1 {
		t.Fatalf("Import returned %d images, want 1", len(got))
	}
	im := got[0]
	if im.ID != imageID(t, img) {
		t.Errorf("ID = %s, want the config digest %s", im.ID, imageID(t, img))
	}
	slices.Sort(im.RepoTags)
	if want := []string{"docker.io/library/busybox:1.36", "localhost:5000/x:y"}; !slices.Equal(im.RepoTags, want) {
		t.Errorf("RepoTags = %v, want %v", im.RepoTags, want)
	}
	if len(im.RepoDigests) != 0 {
		t.Errorf("RepoDigests = %v; a docker archive has no manifest digest", im.RepoDigests)
	}
	if !slices.Equal(im.DiffIDs, diffIDs(t, img)) {
		t.Errorf("DiffIDs = %v, want %v", im.DiffIDs, diffIDs(t, img))
	}
	if im.Size == 0 {
		t.Error("Size = 0")
	}
	if !slices.Equal(im.Config.Entrypoint, testConfig.Entrypoint) || !slices.Equal(im.Config.Env, testConfig.Env) ||
		im.Config.User != "1000:1001" || im.Config.StopSignal != "SIGQUIT" || im.Config.Labels["app"] != "test" {
		t.Errorf("Config = %+v, want %+v", im.Config, testConfig)
	}

	dirs, err := s.LayerDirs(im.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 2 {
		t.Fatalf("LayerDirs = %v, want 2 dirs", dirs)
	}
	checkBaseLayer(t, dirs[0])
	checkUpperLayer(t, dirs[1])
	if n := dirNames(t, s.tmpDir()); len(n) != 0 {
		t.Errorf("tmp/ holds %v after import", n)
	}
}

func checkBaseLayer(t *testing.T, dir string) {
	t.Helper()
	st := lstat(t, filepath.Join(dir, "etc/hello"))
	if st.Mode&0o7777 != 0o640 || st.Uid != 1000 || st.Gid != 1001 {
		t.Errorf("etc/hello: mode %o uid %d gid %d, want 640 1000 1001", st.Mode&0o7777, st.Uid, st.Gid)
	}
	if st.Mtim.Sec != testTime.Unix() {
		t.Errorf("etc/hello mtime = %d, want %d", st.Mtim.Sec, testTime.Unix())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/hello")); string(b) != "hello\n" {
		t.Errorf("etc/hello = %q", b)
	}
	if st := lstat(t, filepath.Join(dir, "etc")); st.Mtim.Sec != testTime.Unix() {
		t.Errorf("etc/ mtime = %d, want %d (directory times are set last)", st.Mtim.Sec, testTime.Unix())
	}
	tool := lstat(t, filepath.Join(dir, "usr/bin/tool"))
	if tool.Mode&0o7777 != 0o4755 {
		t.Errorf("usr/bin/tool mode = %o, want 4755 (setuid kept)", tool.Mode&0o7777)
	}
	if tool2 := lstat(t, filepath.Join(dir, "usr/bin/tool2")); tool2.Ino != tool.Ino {
		t.Error("usr/bin/tool2 is not a hard link to usr/bin/tool")
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin")); err != nil || target != "usr/bin" {
		t.Errorf("bin -> %q, %v; want usr/bin", target, err)
	}
	null := lstat(t, filepath.Join(dir, "dev/null"))
	if null.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(null.Rdev) != 1 || unix.Minor(null.Rdev) != 3 {
		t.Errorf("dev/null: mode %o rdev %d:%d, want char 1:3", null.Mode, unix.Major(null.Rdev), unix.Minor(null.Rdev))
	}
	if fifo := lstat(t, filepath.Join(dir, "run/fifo")); fifo.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("run/fifo mode %o, want a fifo", fifo.Mode)
	}
	if v := getxattr(filepath.Join(dir, "caps"), "user.berth"); v != "yes" {
		t.Errorf("caps xattr user.berth = %q, want yes", v)
	}
	if v := getxattr(filepath.Join(dir, "caps"), "trusted.overlay.redirect"); v != "" {
		t.Errorf("caps carries trusted.overlay.redirect=%q; overlay xattrs from images must be dropped", v)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "abs/file")); string(b) != "contained\n" {
		t.Errorf("absolute entry /abs/file not contained in the layer: %q", b)
	}
}

func checkUpperLayer(t *testing.T, dir string) {
	t.Helper()
	wh := lstat(t, filepath.Join(dir, "etc/hello"))
	if wh.Mode&unix.S_IFMT != unix.S_IFCHR || wh.Rdev != 0 {
		t.Errorf("etc/hello in the upper layer: mode %o rdev %d, want an overlay whiteout (char 0:0)", wh.Mode, wh.Rdev)
	}
	if v := getxattr(filepath.Join(dir, "opq"), "trusted.overlay.opaque"); v != "y" {
		t.Errorf("opq/ trusted.overlay.opaque = %q, want y", v)
	}
	for _, p := range []string{"etc/.wh.hello", "opq/.wh..wh..opq"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s exists; OCI whiteouts must be converted, not written", p)
		}
	}
}

func lstat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return st
}

func getxattr(p, attr string) string {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, attr, buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func TestImportOCILayout(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	tagged := buildImage(t, v1.Config{Cmd: []string{"tagged"}}, baseLayer(t))
	untagged := buildImage(t, v1.Config{Cmd: []string{"untagged"}}, upperLayer(t, "u"))
	tagOnly := buildImage(t, v1.Config{Cmd: []string{"tag-only"}}, upperLayer(t, "t"))
	native := buildImage(t, v1.Config{Cmd: []string{"native"}}, upperLayer(t, "n"))
	foreign := buildImage(t, v1.Config{Cmd: []string{"foreign"}}, upperLayer(t, "f"))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: foreign, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}},
		mutate.IndexAddendum{Add: native, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}}},
	)
	path := writeOCIArchive(t, func(p layout.Path) error {
		if err := p.AppendImage(tagged, layout.WithAnnotations(map[string]string{
			"io.containerd.image.name":          "docker.io/library/busybox:1.36",
			"org.opencontainers.image.ref.name": "example.com/team/app:2",
		})); err != nil {
			return err
		}
		if err := p.AppendImage(untagged); err != nil {
			return err
		}
		// A bare tag names no repository, so it gives no name.
		if err := p.AppendImage(tagOnly, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": "latest",
		})); err != nil {
			return err
		}
		return p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
			"io.containerd.image.name": "multi:1",
		}))
	})
	got := mustImport(t, s, path)
	if len(got) != 4 {
		t.Fatalf("Import returned %d images, want 4: %+v", len(got), got)
	}
	taggedDigest, _ := tagged.Digest()
	idxDigest, _ := idx.Digest()

	im, err := s.Get("busybox:1.36")
	if err != nil || im.ID != imageID(t, tagged) {
		t.Fatalf("Get(busybox:1.36) = %s, %v; want %s", im.ID, err, imageID(t, tagged))
	}
	if want := []string{"docker.io/library/busybox:1.36", "example.com/team/app:2"}; !slices.Equal(im.RepoTags, want) {
		t.Errorf("RepoTags = %v, want %v", im.RepoTags, want)
	}
	wantDigest := "docker.io/library/busybox@" + taggedDigest.String()
	if !slices.Contains(im.RepoDigests, wantDigest) {
		t.Errorf("RepoDigests = %v, want to contain %s", im.RepoDigests, wantDigest)
	}
	if byDigest, err := s.Get("busybox@" + taggedDigest.String()); err != nil || byDigest.ID != im.ID {
		t.Errorf("Get by digest reference = %s, %v; want %s", byDigest.ID, err, im.ID)
	}

	multi, err := s.Get("docker.io/library/multi:1")
	if err != nil || multi.ID != imageID(t, native) {
		t.Errorf("Get(multi:1) = %s, %v; want this platform's image %s", multi.ID, err, imageID(t, native))
	}
	if want := "docker.io/library/multi@" + idxDigest.String(); !slices.Contains(multi.RepoDigests, want) {
		t.Errorf("multi RepoDigests = %v, want the index digest %s", multi.RepoDigests, want)
	}
	for _, img := range []v1.Image{untagged, tagOnly} {
		im, err := s.Get(imageID(t, img))
		if err != nil {
			t.Fatalf("untagged image not stored: %v", err)
		}
		if len(im.RepoTags) != 0 || len(im.RepoDigests) != 0 {
			t.Errorf("untagged image has names %v %v", im.RepoTags, im.RepoDigests)
		}
	}
	if _, err := s.Get(imageID(t, foreign)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the other platform's image was imported (err %v)", err)
	}
	if list := s.List(); len(list) != 4 || !slices.IsSortedFunc(list, func(a, b Image) int { return strings.Compare(a.ID, b.ID) }) {
		t.Errorf("List() = %d images (sorted: %v), want 4 sorted by ID", len(list), slices.IsSortedFunc(list, func(a, b Image) int { return strings.Compare(a.ID, b.ID) }))
	}
}

func TestGetRefForms(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	img := buildImage(t, testConfig, baseLayer(t))
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{
		"busybox:1.36":       img,
		"localhost:5000/x:y": img,
	}))
	id := imageID(t, img)
	hex := strings.TrimPrefix(id, "sha256:")
	for _, ref := range []string{
		id, hex, hex[:12], "sha256:" + hex[:12],
		"busybox:1.36", "library/busybox:1.36", "docker.io/busybox:1.36",
		"docker.io/library/busybox:1.36", "index.docker.io/library/busybox:1.36",
		"localhost:5000/x:y",
	} {
		got, err := s.Get(ref)
		if err != nil || got.ID != id {
			t.Errorf("Get(%q) = %q, %v; want %s", ref, got.ID, err, id)
		}
	}
	for _, ref := range []string{"busybox", "busybox:latest", hex[:11], "localhost:5000/x", "sha256:" + strings.Repeat("0", 64)} {
		if _, err := s.Get(ref); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get(%q) err = %v, want NotFound", ref, err)
		}
	}
	for _, ref := range []string{"", "BusyBox", "sha256:xyz", "busybox@sha256:short", "a::b"} {
		if _, err := s.Get(ref); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Get(%q) err = %v, want InvalidArgument", ref, err)
		}
	}
	// Returned values are copies.
	got, _ := s.Get(id)
	got.RepoTags[0] = "mutated"
	got.Config.Env[0] = "MUTATED=1"
	again, _ := s.Get(id)
	if slices.Contains(again.RepoTags, "mutated") || again.Config.Env[0] == "MUTATED=1" {
		t.Error("Get returned a value sharing memory with the store")
	}
}

func TestSharedLayerUnpackedOnce(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	base := baseLayer(t)
	a := buildImage(t, v1.Config{Cmd: []string{"a"}}, base, upperLayer(t, "a"))
	b := buildImage(t, v1.Config{Cmd: []string{"b"}}, base, upperLayer(t, "b"))
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"a:1": a}))
	baseDir := s.layerDir(diffIDs(t, a)[0])
	before, err := os.Stat(baseDir)
	if err != nil {
		t.Fatal(err)
	}
	mustImport(t, s, writeOCIArchive(t, func(p layout.Path) error { return p.AppendImage(b) }))
	after, err := os.Stat(baseDir)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("the shared layer was unpacked again by the second import")
	}
	if n := dirNames(t, s.layersDir()); len(n) != 3 {
		t.Errorf("layers/ holds %d dirs, want 3 (shared base + two uppers)", len(n))
	}
}

func TestConcurrentImportsOfOneArchive(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	img := buildImage(t, v1.Config{}, baseLayer(t), upperLayer(t, "c"))
	path := writeDockerArchive(t, map[string]v1.Image{"c:1": img})
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { _, errs[i] = s.Import(path) })
	}
	wg.Go(func() { _ = s.Prune(nil) })
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.LayerDirs("c:1"); err != nil {
		t.Fatalf("layers after concurrent imports and a prune: %v", err)
	}
	if n := dirNames(t, s.layersDir()); len(n) != 2 {
		t.Errorf("layers/ = %v, want 2 dirs", n)
	}
}

func TestImportMovesTagAndKeepsOldImageByID(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	a := buildImage(t, v1.Config{Cmd: []string{"a"}}, upperLayer(t, "a"))
	b := buildImage(t, v1.Config{Cmd: []string{"b"}}, upperLayer(t, "b"))
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"x:1": a, "x:2": a}))
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"x:1": b}))
	if got, err := s.Get("x:1"); err != nil || got.ID != imageID(t, b) {
		t.Fatalf("Get(x:1) = %s, %v; want the newer image", got.ID, err)
	}
	old, err := s.Get(imageID(t, a))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"docker.io/library/x:2"}; !slices.Equal(old.RepoTags, want) {
		t.Errorf("old image tags = %v, want %v", old.RepoTags, want)
	}
	// Re-importing adds names, keeps the pin.
	if err := s.Pin(imageID(t, b), true); err != nil {
		t.Fatal(err)
	}
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"x:3": b}))
	got, _ := s.Get("x:3")
	if !got.Pinned || !slices.Contains(got.RepoTags, "docker.io/library/x:1") {
		t.Errorf("after re-import: pinned %v tags %v", got.Pinned, got.RepoTags)
	}

	// All of it survives a restart.
	reopened, err := Open(s.root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want, got := s.List(), reopened.List(); len(want) != len(got) || !slices.EqualFunc(want, got, func(a, b Image) bool {
		return a.ID == b.ID && slices.Equal(a.RepoTags, b.RepoTags) && a.Pinned == b.Pinned
	}) {
		t.Errorf("after reopen List() = %+v, want %+v", got, want)
	}
}

func TestImportMultiImageDockerArchiveWithUntagged(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	a := buildImage(t, v1.Config{Cmd: []string{"a"}}, upperLayer(t, "a"))
	b := buildImage(t, v1.Config{Cmd: []string{"b"}}, upperLayer(t, "b"))
	bDigest, _ := b.Digest()
	got := mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{
		"a:1":                   a,
		"b@" + bDigest.String(): b, // a digest reference gives no RepoTags
	}))
	if len(got) != 2 {
		t.Fatalf("imported %d images, want 2", len(got))
	}
	im, err := s.Get(imageID(t, b))
	if err != nil || len(im.RepoTags) != 0 {
		t.Errorf("untagged image: %+v, %v", im.RepoTags, err)
	}
}

func TestAddStoresPulledImage(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	img := buildImage(t, v1.Config{Cmd: []string{"pulled"}}, baseLayer(t), upperLayer(t, "p"))
	digest, _ := img.Digest()
	got, err := s.Add(img, "example.com/pulled:1", "example.com/pulled@"+digest.String())
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != imageID(t, img) || !slices.Equal(got.RepoTags, []string{"example.com/pulled:1"}) ||
		!slices.Equal(got.RepoDigests, []string{"example.com/pulled@" + digest.String()}) {
		t.Errorf("Add = %+v", got)
	}
	dirs, err := s.LayerDirs(got.ID)
	if err != nil || len(dirs) != 2 {
		t.Fatalf("LayerDirs = %v, %v", dirs, err)
	}
	checkBaseLayer(t, dirs[0])
}

func TestImportRejectsMalformedArchives(t *testing.T) {
	requiresRoot(t)
	layerTar := tarBytes(t, file("f", "x"))
	zeros := "sha256:" + strings.Repeat("0", 64)
	cfg := `{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":["` + zeros + `"]},"config":{}}`
	garbage := filepath.Join(t.TempDir(), "garbage.tar")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a tar "), 100), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing file", filepath.Join(t.TempDir(), "nope.tar"), "nope.tar"},
		{"not a tar", garbage, "garbage.tar"},
		{"empty tar", writeRawArchive(t), "neither an OCI image layout"},
		{"bad manifest.json", writeRawArchive(t, file("manifest.json", "{")), "manifest.json"},
		{"config missing", writeRawArchive(t,
			file("manifest.json", `[{"Config":"c.json","Layers":["l.tar"]}]`),
			file("l.tar", string(layerTar))), `config "c.json" is missing`},
		{"layer count mismatch", writeRawArchive(t,
			file("manifest.json", `[{"Config":"c.json","Layers":[]}]`),
			file("c.json", cfg)), "lists 1 layers"},
		{"diff ID mismatch", writeRawArchive(t,
			file("manifest.json", `[{"Config":"c.json","RepoTags":["bad:1"],"Layers":["l.tar"]}]`),
			file("c.json", cfg), file("l.tar", string(layerTar))), "layer " + zeros},
		{"entry escapes", writeRawArchive(t, file("../evil", "x")), "../evil"},
		// A symlink in the archive must not lead the reader to a host file.
		{"symlinked config", writeRawArchive(t,
			file("manifest.json", `[{"Config":"c.json","Layers":[]}]`),
			symlink("c.json", "/etc/hostname")), `config "c.json" is missing`},
		{"bad tag", writeRawArchive(t,
			file("manifest.json", `[{"Config":"c.json","RepoTags":["Bad Tag"],"Layers":["l.tar"]}]`),
			file("c.json", strings.Replace(cfg, zeros, "sha256:"+sha256Hex(layerTar), 1)),
			file("l.tar", string(layerTar))), "RepoTags"},
		{"oci layout without index", writeRawArchive(t, file("oci-layout", `{"imageLayoutVersion":"1.0.0"}`)), "index.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			_, err := s.Import(tc.path)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to mention %q", err, tc.want)
			}
			if tc.name != "missing file" && !strings.Contains(err.Error(), tc.path) {
				t.Errorf("err = %q does not name the archive", err)
			}
			assertClean(t, s)
		})
	}
}

func sha256Hex(b []byte) string {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h.Hex
}

func TestOpenRemovesLeftovers(t *testing.T) {
	root := filepath.Join(t.TempDir(), "images")
	s, err := Open(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	leftovers := []string{
		filepath.Join(s.tmpDir(), "import-123", "blobs"),
		filepath.Join(s.tmpDir(), "layer-456"),
		filepath.Join(s.layersDir(), ".trash-abc"),
	}
	for _, d := range leftovers {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	tmpRecord := filepath.Join(s.imagesDir(), ".x.json.tmp-1")
	if err := os.WriteFile(tmpRecord, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A record the store cannot read is skipped, not fatal.
	bad := filepath.Join(s.imagesDir(), strings.Repeat("a", 64)+".json")
	if err := os.WriteFile(bad, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(leftovers, tmpRecord) {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s survived Open", p)
		}
	}
	if n := dirNames(t, s.tmpDir()); len(n) != 0 {
		t.Errorf("tmp/ = %v", n)
	}
	if len(s.List()) != 0 {
		t.Error("unreadable record listed")
	}
}

func TestFsInfo(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"f:1": buildImage(t, v1.Config{}, baseLayer(t))}))
	mp, used, inodes, err := s.FsInfo()
	if err != nil {
		t.Fatal(err)
	}
	if mp == "" || !strings.HasPrefix(s.root, strings.TrimSuffix(mp, "/")+"/") {
		t.Errorf("mount point %q does not contain %s", mp, s.root)
	}
	if used == 0 || inodes < 15 {
		t.Errorf("used %d bytes, %d inodes; want the unpacked layer counted", used, inodes)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.root, &st); err != nil {
		t.Fatal(err)
	}
	if total := st.Blocks * uint64(st.Bsize); used > total {
		t.Errorf("used %d > file system size %d", used, total)
	}
}

func TestImportGzippedArchive(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	img := buildImage(t, v1.Config{}, baseLayer(t))
	plain, err := os.ReadFile(writeDockerArchive(t, map[string]v1.Image{"gz:1": img}))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(plain)
	zw.Close()
	path := filepath.Join(t.TempDir(), "image.tar.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := mustImport(t, s, path); len(got) != 1 || got[0].ID != imageID(t, img) {
		t.Errorf("Import = %+v", got)
	}
}

// Docker ≥ 25 writes an OCI layout and a manifest.json into one archive;
// both describe the same images and their names are merged.
func TestImportHybridDockerArchive(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	img := buildImage(t, v1.Config{}, baseLayer(t))
	digest, _ := img.Digest()
	cfgName, _ := img.ConfigName()
	layerDigest := func() string {
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		return m.Layers[0].Digest.Hex
	}()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          "docker.io/library/hybrid:1",
		"org.opencontainers.image.ref.name": "1",
	})); err != nil {
		t.Fatal(err)
	}
	manifest := `[{"Config":"blobs/sha256/` + cfgName.Hex + `","RepoTags":["hybrid:1","hybrid:extra"],` +
		`"Layers":["blobs/sha256/` + layerDigest + `"]}]`
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	got := mustImport(t, s, tarDir(t, dir))
	if len(got) != 1 {
		t.Fatalf("Import returned %d images, want 1", len(got))
	}
	if want := []string{"docker.io/library/hybrid:1", "docker.io/library/hybrid:extra"}; !slices.Equal(got[0].RepoTags, want) {
		t.Errorf("RepoTags = %v, want %v", got[0].RepoTags, want)
	}
	if want := []string{"docker.io/library/hybrid@" + digest.String()}; !slices.Equal(got[0].RepoDigests, want) {
		t.Errorf("RepoDigests = %v, want %v", got[0].RepoDigests, want)
	}
}
