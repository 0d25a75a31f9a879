package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// source is one image about to be stored, whatever it came from (an OCI
// layout, a docker archive, a registry). Reading the formats produces
// sources; storing them is the same for all.
type source struct {
	id      string // "sha256:" + hex of sha256(configRaw), computed here, never trusted
	config  *v1.ConfigFile
	tags    []string // normalised
	digests []string // normalised "<repo>@sha256:…"
	layers  []layerSource
}

// layerSource is one layer to unpack. open returns the uncompressed tar
// stream; what it yields is verified against diffID while unpacking.
type layerSource struct {
	diffID string
	size   int64
	open   func() (io.ReadCloser, error)
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
	sum := sha256.Sum256(configRaw)
	return &source{id: "sha256:" + hex.EncodeToString(sum[:]), config: cfg, layers: layers}, nil
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
// keeping the first one's layers and every name.
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

// image is what the store will record for the source.
func (src *source) image() Image {
	img := Image{
		ID:          src.id,
		RepoTags:    slices.Clone(src.tags),
		RepoDigests: slices.Clone(src.digests),
		Config:      *src.config.Config.DeepCopy(),
	}
	for _, l := range src.layers {
		img.Size += uint64(max(l.size, 0))
		img.DiffIDs = append(img.DiffIDs, l.diffID)
	}
	return img
}

// sourceFromImage adapts a go-containerregistry image (from a layout or a
// registry). The caller adds the names.
func sourceFromImage(what string, img v1.Image) (*source, error) {
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: config: %v", what, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("%s: layers: %v", what, err)
	}
	ls := make([]layerSource, len(layers))
	for i, l := range layers {
		size, err := l.Size()
		if err != nil {
			return nil, fmt.Errorf("%s: layer %d: %v", what, i, err)
		}
		ls[i] = layerSource{size: size, open: l.Uncompressed}
	}
	return newSource(what, raw, ls)
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
			repo := ref[:strings.LastIndex(ref, ":")]
			digests = append(digests, repo+"@"+manifestDigest)
		}
	}
	return tags, digests
}
