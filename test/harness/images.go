package harness

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// BusyboxBinary is Debian's busybox-static, which `make deps` installs.
const BusyboxBinary = "/bin/busybox"

// busyboxApplets are linked into the test image's /bin.
var busyboxApplets = []string{
	"sh", "sleep", "cat", "echo", "ls", "id", "hostname", "head", "tail", "wc",
	"nc", "httpd", "wget", "true", "false", "env", "pwd", "kill", "ps", "touch",
	"mkdir", "rm", "dd", "printf", "seq", "yes", "grep", "mount", "test", "ip",
	"ifconfig", "tr", "stat",
}

// BusyboxImage builds a small image from the host's busybox-static: /bin
// with busybox and its applets, /etc/passwd and /etc/group with a user
// "app" (1000:1000) in group "staff" (50) too, and /tmp.
func BusyboxImage(cfg v1.Config) (v1.Image, error) {
	return BusyboxImageWith(cfg, busyboxApplets)
}

// BusyboxImageWith is BusyboxImage with the given applets in /bin.
func BusyboxImageWith(cfg v1.Config, applets []string) (v1.Image, error) {
	bb, err := os.ReadFile(BusyboxBinary)
	if err != nil {
		return nil, fmt.Errorf("%w (install Debian's busybox-static: make deps)", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Unix(1700000000, 0)
	dir := func(n string, mode int64) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: n, Mode: mode, ModTime: now})
	}
	file := func(n string, mode int64, data []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: mode, Size: int64(len(data)), ModTime: now})
		tw.Write(data)
	}
	dir("bin/", 0o755)
	dir("etc/", 0o755)
	dir("tmp/", 0o1777)
	dir("home/", 0o755)
	dir("home/app/", 0o755)
	file("bin/busybox", 0o755, bb)
	for _, a := range applets {
		if a == "busybox" { // busybox --list names itself
			continue
		}
		// Hard links, as busybox images have them: masking one applet
		// (critest masks /bin/ls) must not mask the shell.
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: "bin/" + a, Linkname: "bin/busybox", Mode: 0o755, ModTime: now})
	}
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	file("etc/group", 0o644, []byte("root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n"))
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	if cfg.Env == nil {
		cfg.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// WriteDockerArchive writes img tagged as tag in `docker save` format.
func WriteDockerArchive(path, tag string, img v1.Image) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, ref, img)
}

// WriteOCIArchive writes img as a tarball of an OCI image layout, with
// ref as its org.opencontainers.image.ref.name annotation, as
// `skopeo copy ... oci-archive:` or `ctr export` produce.
func WriteOCIArchive(path, ref string, img v1.Image) error {
	dir, err := os.MkdirTemp("", "oci-layout")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(out)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = rel
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// WithFile adds one file to img, in a layer of its own.
func WithFile(img v1.Image, path string, mode int64, data []byte) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(1700000000, 0)}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	})
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(img, layer)
}
