package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-project/berth/cri/errdefs"
)

// source is one image about to be stored, whatever it came from (an OCI
// layout, a docker archive, a registry, a v1.Image, the builtin image).
// Reading the formats produces sources; storing them is the same for all.
type source struct {
	id        string // "sha256:" + hex of sha256(configRaw), computed here, never trusted
	config    *v1.ConfigFile
	configRaw []byte
	// configWant is the config digest the manifest gives, checked when
	// the config is stored; "" when there is no manifest.
	configWant string
	// manifest is the raw image manifest; nil when the source has none
	// (a docker archive), in which case the store writes an OCI manifest.
	manifest []byte
	// indexes are the raw indexes the image was reached through, kept
	// with it (the digest of the outermost is often its RepoDigest).
	indexes [][]byte
	tags    []string // normalised
	digests []string // normalised "<repo>@sha256:…"
	layers  []layerSource
	pin     bool

	// Set by storeSource.
	manifestDigest string
	blobs          []string
}

// layerSource is one layer: its blob as shipped, which the store keeps,
// and the diff ID its unpacked content must have.
type layerSource struct {
	diffID string
	blob   blobSource
}

// newSource parses a raw config blob and pairs its diff IDs with the
// layers, in order. what names the image in errors.
func newSource(what string, configRaw []byte, layers []layerSource) (*source, error) {
	cfg, err := v1.ParseConfigFile(bytes.NewReader(configRaw))
	if err != nil {
		return nil, fmt.Errorf("%s: config: %v", what, err)
	}
	diffIDs := cfg.RootFS.DiffIDs
	if len(diffIDs) != len(layers) {
		return nil, fmt.Errorf("%s: config lists %d layers (rootfs.diff_ids) but the manifest has %d",
			what, len(diffIDs), len(layers))
	}
	for i, d := range diffIDs {
		if !validDigest(d.String()) {
			return nil, fmt.Errorf("%s: config: unsupported diff ID %q", what, d)
		}
		layers[i].diffID = d.String()
	}
	return &source{id: digestOf(configRaw), config: cfg, configRaw: configRaw, layers: layers}, nil
}

// addNames adds tags and digest references, keeping each once.
func (src *source) addNames(tags, digests []string) {
	for _, t := range tags {
		if !slices.Contains(src.tags, t) {
			src.tags = append(src.tags, t)
		}
	}
	for _, d := range digests {
		if !slices.Contains(src.digests, d) {
			src.digests = append(src.digests, d)
		}
	}
}

// mergeSources folds sources describing the same image (same ID) into one,
// keeping the first one's layers and manifest and every name.
func mergeSources(srcs []*source) []*source {
	var out []*source
	byID := map[string]*source{}
	for _, src := range srcs {
		if first, ok := byID[src.id]; ok {
			first.addNames(src.tags, src.digests)
			continue
		}
		byID[src.id] = src
		out = append(out, src)
	}
	return out
}

// image is what the store will record for the source. Layer sizes are
// known once storeSource has stored the blobs.
func (src *source) image() Image {
	img := Image{
		ID:          src.id,
		RepoTags:    slices.Clone(src.tags),
		RepoDigests: slices.Clone(src.digests),
		Config:      *src.config.Config.DeepCopy(),
		Pinned:      src.pin,
	}
	for _, l := range src.layers {
		img.Size += uint64(max(l.blob.size, 0))
		img.DiffIDs = append(img.DiffIDs, l.diffID)
	}
	return img
}

// configBlob is the config as a blob to keep.
func (src *source) configBlob() blobSource {
	return bytesBlob("config "+src.id, src.configRaw, src.configWant, "")
}

// writeManifest returns an OCI manifest for a source that has none, from
// the stored blobs' digests, sizes and media types. The same blobs give
// the same manifest, so importing one archive twice gives one digest.
func (src *source) writeManifest() ([]byte, error) {
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config: v1.Descriptor{
			MediaType: types.OCIConfigJSON,
			Size:      int64(len(src.configRaw)),
			Digest:    mustHash(src.id),
		},
		Layers: []v1.Descriptor{},
	}
	for _, l := range src.layers {
		m.Layers = append(m.Layers, v1.Descriptor{
			MediaType: l.blob.mediaType,
			Size:      l.blob.size,
			Digest:    mustHash(l.blob.digest),
		})
	}
	return json.Marshal(m)
}

// mustHash converts a digest the store has validated.
func mustHash(d string) v1.Hash {
	h, err := v1.NewHash(d)
	if err != nil {
		panic(fmt.Sprintf("image store: digest %q was not validated: %v", d, err))
	}
	return h
}

// sourceFromImage adapts a go-containerregistry image (from a layout or
// from a caller of Add). The caller adds the names. Errors reading the
// image's blobs are of class errdefs.ErrInvalidArgument and wrap the
// reader's own error.
func sourceFromImage(what string, img v1.Image) (*source, error) {
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", what, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", what, err)
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", what, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("%s: layers: %w", what, err)
	}
	if len(layers) != len(m.Layers) {
		return nil, fmt.Errorf("%s: manifest lists %d layers, the image has %d", what, len(m.Layers), len(layers))
	}
	ls := make([]layerSource, len(layers))
	for i, l := range layers {
		desc := m.Layers[i]
		blobWhat := fmt.Sprintf("%s: layer %s", what, desc.Digest)
		ls[i] = layerSource{blob: blobSource{
			digest: desc.Digest.String(), size: desc.Size, mediaType: desc.MediaType, what: blobWhat,
			open: classifiedOpen(func(context.Context) (io.ReadCloser, error) { return l.Compressed() },
				func(err error) error { return errdefs.InvalidArgument("%s: %w", blobWhat, err) }),
		}}
	}
	src, err := newSource(what, rawConfig, ls)
	if err != nil {
		return nil, err
	}
	src.manifest = rawManifest
	src.configWant = m.Config.Digest.String()
	return src, nil
}

// fileLayer is a layer blob in a file of an extracted archive, whose
// digest only reading tells.
func fileLayer(what, path string, size int64) layerSource {
	return layerSource{blob: blobSource{
		size: size, mediaType: layerMediaType(path), what: what, local: path,
		open: classifiedOpen(func(context.Context) (io.ReadCloser, error) { return os.Open(path) },
			func(err error) error { return errdefs.InvalidArgument("%s: %w", what, err) }),
	}}
}

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// layerMediaType tells a layer file's OCI media type by its first bytes.
func layerMediaType(path string) types.MediaType {
	head := make([]byte, 4)
	if f, err := os.Open(path); err == nil {
		n, _ := io.ReadFull(f, head)
		head = head[:n]
		f.Close()
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return types.OCILayer
	case bytes.HasPrefix(head, zstdMagic):
		return types.OCILayerZStd
	default:
		return types.OCIUncompressedLayer
	}
}

// splitNames sorts normalised references into tags and digest references,
// and adds "<repo>@<manifestDigest>" for the repository of every tag when
// the manifest digest is known, since that is how the image can be pulled.
func splitNames(refs []string, manifestDigest string) (tags, digests []string) {
	for _, ref := range refs {
		if strings.Contains(ref, "@") {
			digests = append(digests, ref)
			continue
		}
		tags = append(tags, ref)
		if manifestDigest != "" {
			digests = append(digests, repoOf(ref)+"@"+manifestDigest)
		}
	}
	return tags, digests
}

// repoOf is the repository of a normalised tag or digest reference.
func repoOf(norm string) string {
	if i := strings.IndexByte(norm, '@'); i >= 0 {
		return norm[:i]
	}
	return norm[:strings.LastIndexByte(norm, ':')]
}
