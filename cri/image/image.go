package image

import (
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Image is what the store knows about one image. Values handed out by the
// Store are copies: callers may keep and modify them freely. The JSON form
// is part of the on-disk record (see record), so field tags must not change
// without a record version bump.
type Image struct {
	// ID is "sha256:<hex>", the digest of the image's config blob.
	ID string `json:"id"`
	// RepoTags are normalised tags, e.g. "docker.io/library/busybox:latest".
	// A tag belongs to at most one image.
	RepoTags []string `json:"repoTags,omitempty"`
	// RepoDigests are "<repository>@sha256:<manifest or index digest>",
	// known when the source named the image and gave its manifest digest.
	RepoDigests []string `json:"repoDigests,omitempty"`
	// Size is the sum of the layers' blob sizes as shipped (compressed when
	// the source was compressed), which is what registries and crictl report.
	Size uint64 `json:"size"`
	// Config is the runtime configuration from the image's config file.
	Config v1.Config `json:"config"`
	// DiffIDs are the layers' diff IDs ("sha256:<hex>"), bottom to top.
	DiffIDs []string `json:"diffIDs"`
	// Pinned images are exempt from the kubelet's image garbage collection.
	Pinned bool `json:"pinned,omitempty"`
}

// clone returns a deep copy, so that callers never share slices or maps with
// the store.
func (img Image) clone() Image {
	out := img
	out.RepoTags = slices.Clone(img.RepoTags)
	out.RepoDigests = slices.Clone(img.RepoDigests)
	out.DiffIDs = slices.Clone(img.DiffIDs)
	if c := img.Config.DeepCopy(); c != nil {
		out.Config = *c
	}
	return out
}

// recordVersion is the version of the on-disk record format. Bump it only
// with a migration in loadRecord.
const recordVersion = 1

// record is the on-disk form of an image, <root>/images/<hex>.json. The
// image is immutable apart from its names and pin, so rewriting the whole
// record on a name change is simple and cheap.
type record struct {
	Version int       `json:"version"`
	Image   Image     `json:"image"`
	Created time.Time `json:"created"` // when first stored; breaks ties on load
	// Manifest is the digest of the image manifest blob that Export
	// writes: the one pulled or imported, or one the store wrote for a
	// docker archive (which carries none). Records written before the
	// store kept blobs have none, and their images cannot be exported.
	Manifest string `json:"manifest,omitempty"`
	// Blobs are the digests of every blob the image keeps in blobs/:
	// the manifest(s), any index it was resolved through, the config and
	// the layers as shipped. They are reference-counted like layers.
	Blobs []string `json:"blobs,omitempty"`
}

// clone returns a deep copy of the record.
func (r *record) clone() *record {
	out := *r
	out.Image = r.Image.clone()
	out.Blobs = slices.Clone(r.Blobs)
	return &out
}
