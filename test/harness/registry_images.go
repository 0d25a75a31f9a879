package harness

import (
	"archive/tar"
	"bytes"
	"io"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// MarkFile is the file MarkedImage adds, holding the mark.
const MarkFile = "/etc/berth-mark"

// MarkedImage is BusyboxImage (command sh) with MARK=<mark> in its
// environment, then layers, then a top layer holding MarkFile with the
// mark. Marked images differ in their config and top layer and share the
// busybox layer, which is the same blob in every image BusyboxImage builds
// (and so is on every node that imported the e2e busybox image).
func MarkedImage(mark string, layers ...v1.Layer) (v1.Image, error) {
	img, err := BusyboxImage(v1.Config{
		Cmd: []string{"sh"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "MARK=" + mark},
	})
	if err != nil {
		return nil, err
	}
	top, err := FileLayer(MarkFile, []byte(mark+"\n"))
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(img, append(layers, top)...)
}

// FileLayer is a layer holding one file, the same blob for the same
// path and data.
func FileLayer(path string, data []byte) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(path, "/"), Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(1700000000, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	})
}

// OtherArch is an architecture that is not this machine's, for the
// entry of a multi-platform index that must not be picked.
func OtherArch() string {
	if runtime.GOARCH == "s390x" {
		return "ppc64le"
	}
	return "s390x"
}

// MultiPlatformIndex is a Docker manifest list with native as the
// linux/<GOARCH> image and a random image (which would not run) as the
// linux/OtherArch() one, listed first so that a client taking the first
// entry gets the wrong one.
func MultiPlatformIndex(native v1.Image) (v1.ImageIndex, error) {
	other, err := random.Image(512, 1)
	if err != nil {
		return nil, err
	}
	cf, err := other.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", OtherArch()
	if other, err = mutate.ConfigFile(other, cf); err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	return mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: OtherArch()}}},
		mutate.IndexAddendum{Add: native, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	), nil
}
