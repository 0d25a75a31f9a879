package image

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-project/berth/cri/errdefs"
)

// Import stores every image of the tarball at path, which is an OCI
// image-layout tar (as written by `ctr export`, `skopeo copy oci-archive:`,
// `crane pull --format=oci` + tar, or Export) or a `docker save` archive,
// optionally gzip-compressed. It returns the stored images (copies), with
// all their names, in archive order. The archive's blobs are kept as they
// are in it, so that Export writes them back unchanged; a docker archive
// carries no manifest, so the store writes an OCI manifest for each of
// its images.
//
// Names come from manifest.json RepoTags (docker archives) or from the
// io.containerd.image.name and org.opencontainers.image.ref.name
// annotations (OCI layouts); an OCI layout also gives RepoDigests. Images
// without names are stored and listed by ID. A tag another image holds moves
// to the imported image.
//
// The import is all-or-nothing: the whole archive is read and every blob
// and layer stored and verified before any record is written, and a failed
// import deletes the blobs and layers it added, so a malformed archive
// (error class errdefs.ErrInvalidArgument, naming the file and the
// problem) leaves the store as it was. Import blocks for as long as the
// unpacking takes; concurrent imports, pulls and reads are fine.
func (s *Store) Import(path string) ([]Image, error) {
	work, err := os.MkdirTemp(s.tmpDir(), "import-")
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	defer os.RemoveAll(work)
	if err := extractArchive(path, work); err != nil {
		return nil, err
	}
	srcs, err := readArchive(work, path)
	if err != nil {
		return nil, err
	}
	return s.store(context.Background(), srcs, "archive "+path)
}

// Add stores an image obtained some other way, e.g. built in memory.
// names are references in any form NormalizeRef accepts: tags go to
// RepoTags, digest references ("busybox@sha256:…", the digest the image
// was pulled by) to RepoDigests. The image's manifest, config and layer
// blobs are kept; layers are verified against the config's diff IDs and
// unpacked unless present. Errors reading img's blobs are reported with
// class errdefs.ErrInvalidArgument and wrap the reader's own error, which
// a caller may inspect with errors.As.
func (s *Store) Add(img v1.Image, names ...string) (Image, error) {
	src, what, err := addSource(img, names)
	if err != nil {
		return Image{}, err
	}
	out, err := s.store(context.Background(), []*source{src}, what)
	if err != nil {
		return Image{}, err
	}
	return out[0], nil
}

// addSource adapts an image given to Add (or built by EnsureBuiltin).
func addSource(img v1.Image, names []string) (*source, string, error) {
	var norms []string
	for _, n := range names {
		norm, err := NormalizeRef(n)
		if err != nil {
			return nil, "", err
		}
		norms = append(norms, norm)
	}
	what := "image"
	if len(norms) > 0 {
		what = "image " + norms[0]
	}
	src, err := sourceFromImage(what, img)
	if err != nil {
		return nil, "", errdefs.InvalidArgument("%w", err)
	}
	src.addNames(splitNames(norms, ""))
	return src, what, nil
}

// store keeps the sources' blobs, unpacks their layers and then publishes
// their records; on failure it leaves nothing behind.
func (s *Store) store(ctx context.Context, srcs []*source, what string) ([]Image, error) {
	w := s.begin(what)
	defer w.close()
	for _, src := range srcs {
		s.warnPlatform(src, what)
		if err := w.storeSource(ctx, src); err != nil {
			return nil, err
		}
	}
	return w.commit(srcs)
}

// publishLocked records img, merging it with an existing record of the same
// ID (names and blobs accumulate, the pin and the first manifest are kept)
// and taking its tags away from any other image. The other images are
// written first: should a crash come in between, a tag is briefly on no
// image rather than on two.
func (s *Store) publishLocked(img Image, manifest string, blobs []string) (Image, error) {
	for _, rec := range s.sortedRecords() {
		if rec.Image.ID == img.ID {
			continue
		}
		kept := slices.DeleteFunc(slices.Clone(rec.Image.RepoTags), func(t string) bool {
			return slices.Contains(img.RepoTags, t)
		})
		if len(kept) == len(rec.Image.RepoTags) {
			continue
		}
		next := rec.clone()
		next.Image.RepoTags = kept
		if err := s.writeRecordLocked(next); err != nil {
			return Image{}, err
		}
	}
	rec := newRecord(img)
	rec.Manifest, rec.Blobs = manifest, slices.Clone(blobs)
	if old, ok := s.images[img.ID]; ok {
		rec.Created = old.Created
		rec.Image.Pinned = old.Image.Pinned || img.Pinned
		rec.Image.RepoTags = union(old.Image.RepoTags, img.RepoTags)
		rec.Image.RepoDigests = union(old.Image.RepoDigests, img.RepoDigests)
		if old.Manifest != "" {
			rec.Manifest = old.Manifest
		}
		rec.Blobs = union(old.Blobs, blobs)
		slices.Sort(rec.Blobs)
	}
	if err := s.writeRecordLocked(rec); err != nil {
		return Image{}, err
	}
	return rec.Image.clone(), nil
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// warnPlatform logs an image built for another platform: it is stored (it
// may run under binfmt emulation), but a failure to start it later is then
// easier to explain.
func (s *Store) warnPlatform(src *source, what string) {
	os, arch := src.config.OS, src.config.Architecture
	if (os != "" && os != runtime.GOOS) || (arch != "" && arch != runtime.GOARCH) {
		s.log.Warn("image store: image is built for another platform", "source", what,
			"image", src.id, "platform", os+"/"+arch)
	}
}
