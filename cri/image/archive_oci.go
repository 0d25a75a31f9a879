package image

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations naming an image in an OCI layout's index.json.
const (
	annotationContainerdName = "io.containerd.image.name"          // a full reference
	annotationRefName        = "org.opencontainers.image.ref.name" // a full reference, or just a tag
)

// maxIndexDepth bounds nested indexes, so a hostile layout cannot recurse.
const maxIndexDepth = 4

// readOCILayout reads the images listed in an OCI layout's index.json. A
// nested index (a multi-platform image) contributes the image for this
// machine's platform; descriptors of other media types are skipped.
func readOCILayout(dir, what string) ([]*source, error) {
	var marker struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := readJSONFile(filepath.Join(dir, "oci-layout"), &marker); err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	if marker.Version == "" {
		return nil, fmt.Errorf("%s: oci-layout has no imageLayoutVersion", what)
	}
	var top v1.IndexManifest
	if err := readJSONFile(filepath.Join(dir, "index.json"), &top); err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	var srcs []*source
	for _, desc := range top.Manifests {
		names, err := annotationNames(desc.Annotations)
		if err != nil {
			return nil, fmt.Errorf("%s: index.json: %v", what, err)
		}
		imgWhat := fmt.Sprintf("%s: image %s", what, desc.Digest)
		img, indexes, err := pickImage(idx, desc, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", imgWhat, err)
		}
		if img == nil {
			continue
		}
		src, err := sourceFromImage(imgWhat, img)
		if err != nil {
			return nil, err
		}
		src.indexes = indexes
		for i := range src.layers {
			// The layout's blob files can be linked into the store.
			if d := src.layers[i].blob.digest; validDigest(d) {
				src.layers[i].blob.local = filepath.Join(dir, "blobs", "sha256", d[len("sha256:"):])
			}
		}
		src.addNames(splitNames(names, desc.Digest.String()))
		srcs = append(srcs, src)
	}
	return srcs, nil
}

// annotationNames returns the normalised names a descriptor's annotations
// give. containerd's name annotation must be a valid reference. The OCI
// ref.name is often only a tag ("latest", "1.0"), which names no repository:
// it counts only when it looks like a full reference (has a "/", ":" or
// "@"), and is ignored when it does not parse.
func annotationNames(ann map[string]string) ([]string, error) {
	var names []string
	if n := ann[annotationContainerdName]; n != "" {
		norm, err := NormalizeRef(n)
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %v", annotationContainerdName, err)
		}
		names = append(names, norm)
	}
	if n := ann[annotationRefName]; strings.ContainsAny(n, "/:@") {
		if norm, err := NormalizeRef(n); err == nil && (len(names) == 0 || names[0] != norm) {
			names = append(names, norm)
		}
	}
	return names, nil
}

// indexReader is what pickImage needs of a layout index.
type indexReader interface {
	Image(v1.Hash) (v1.Image, error)
	ImageIndex(v1.Hash) (v1.ImageIndex, error)
}

// pickImage returns the image desc stands for: the image itself, or this
// platform's image from a nested index, with the raw indexes it went
// through. It returns nil for descriptors that are not images
// (attestations, artifacts). Manifests and indexes are checked against
// their digests, because the digest becomes a RepoDigest.
func pickImage(idx indexReader, desc v1.Descriptor, depth int) (v1.Image, [][]byte, error) {
	switch desc.MediaType {
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return nil, nil, err
		}
		raw, err := img.RawManifest()
		if err != nil {
			return nil, nil, fmt.Errorf("manifest: %v", err)
		}
		return img, nil, checkDigest("manifest", raw, desc.Digest)
	case types.OCIImageIndex, types.DockerManifestList:
		if depth >= maxIndexDepth {
			return nil, nil, fmt.Errorf("indexes nested more than %d deep", maxIndexDepth)
		}
		child, err := idx.ImageIndex(desc.Digest)
		if err != nil {
			return nil, nil, err
		}
		raw, err := child.RawManifest()
		if err != nil {
			return nil, nil, fmt.Errorf("index: %v", err)
		}
		if err := checkDigest("index", raw, desc.Digest); err != nil {
			return nil, nil, err
		}
		im, err := child.IndexManifest()
		if err != nil {
			return nil, nil, fmt.Errorf("index %s: %v", desc.Digest, err)
		}
		host := hostPlatform()
		best, ok := host.pick(im.Manifests)
		if !ok {
			return nil, nil, fmt.Errorf("index %s has no image for %s", desc.Digest, host)
		}
		img, indexes, err := pickImage(child, best, depth+1)
		return img, append([][]byte{raw}, indexes...), err
	default:
		return nil, nil, nil
	}
}

func checkDigest(kind string, raw []byte, want v1.Hash) error {
	if want.Algorithm != "sha256" {
		return fmt.Errorf("%s digest %s: only sha256 is supported", kind, want)
	}
	sum := sha256.Sum256(raw)
	if got := hex.EncodeToString(sum[:]); got != want.Hex {
		return fmt.Errorf("%s content has digest sha256:%s, not %s", kind, got, want)
	}
	return nil
}
