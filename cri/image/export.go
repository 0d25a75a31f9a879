package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-project/berth/cri/errdefs"
)

// Export formats.
const (
	FormatDocker = "docker" // a `docker save` archive: manifest.json with RepoTags
	FormatOCI    = "oci"    // an OCI image-layout tarball, named as containerd names images
)

// exportTime is the time of every entry Export writes, so that exporting
// the same images twice gives the same bytes.
var exportTime = time.Unix(0, 0).UTC()

// exported is one image to write, with the names it is written under.
type exported struct {
	id       string
	manifest string // digest
	names    []string
	raw      []byte       // the manifest, read by load
	m        *v1.Manifest // parsed
}

// Export writes the images refs name (any form Get accepts) to w as one
// tarball: format "docker" writes a `docker save` archive (manifest.json
// listing each image's config, layers and RepoTags), "oci" an OCI image
// layout (index.json with one descriptor per image name, annotated with
// io.containerd.image.name and org.opencontainers.image.ref.name, as
// `ctr export` writes it). The blobs — manifest, config, layers — are the
// ones stored, byte for byte, so importing the archive gives the same
// image ID, names and diff IDs, and the OCI layout the same manifest
// digest.
//
// A ref that is a tag exports the image under that tag; an ID or digest
// exports it under all its tags (and, in OCI layouts, a digest reference
// under itself). Several refs naming one image write it once, with the
// union of the names. Export holds the images' blobs while it writes, so
// removing them meanwhile does not cut the archive short; it blocks for as
// long as w takes. Errors: errdefs.ErrInvalidArgument for a bad format or
// ref, errdefs.ErrNotFound for a ref naming no image,
// errdefs.ErrFailedPrecondition for an image stored before the store kept
// blobs (pull or import it again); an error from w or from reading a blob
// leaves a truncated archive.
func (s *Store) Export(w io.Writer, format string, refs ...string) error {
	if format != FormatDocker && format != FormatOCI {
		return errdefs.InvalidArgument("export: format %q: want %q or %q", format, FormatDocker, FormatOCI)
	}
	if len(refs) == 0 {
		return errdefs.InvalidArgument("export: no image named")
	}
	images, held, err := s.exportPlan(refs)
	if err != nil {
		return err
	}
	defer s.releaseBlobs(held)
	for _, e := range images {
		if err := s.loadExported(e); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	tw := tar.NewWriter(w)
	if format == FormatDocker {
		err = s.writeDockerArchive(tw, images)
	} else {
		err = s.writeOCILayout(tw, images)
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// exportPlan resolves refs and holds the blobs of the images they name.
func (s *Store) exportPlan(refs []string) ([]*exported, []string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*exported
	byID := map[string]*exported{}
	var held []string
	for _, ref := range refs {
		rec, kind, err := s.resolveLocked(ref)
		if err != nil {
			return nil, nil, fmt.Errorf("export: %w", err)
		}
		if rec.Manifest == "" {
			return nil, nil, errdefs.FailedPrecondition("export %s: image %s was stored before berth kept image blobs; "+
				"pull or import it again to export it", ref, rec.Image.ID)
		}
		var names []string
		switch kind {
		case byTag, byDigest:
			norm, _ := NormalizeRef(ref) // resolved by name, so it parses
			names = []string{norm}
		default:
			names = rec.Image.RepoTags
		}
		e, ok := byID[rec.Image.ID]
		if !ok {
			e = &exported{id: rec.Image.ID, manifest: rec.Manifest}
			byID[rec.Image.ID] = e
			out = append(out, e)
			for _, d := range rec.Blobs {
				s.busyBlobs[d]++
				held = append(held, d)
			}
		}
		e.names = union(e.names, names)
	}
	return out, held, nil
}

func (s *Store) releaseBlobs(held []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range held {
		if s.busyBlobs[d]--; s.busyBlobs[d] <= 0 {
			delete(s.busyBlobs, d)
		}
	}
}

// loadExported reads an exported image's manifest and checks that the
// store has every blob it names, so that a missing blob fails the export
// before anything is written.
func (s *Store) loadExported(e *exported) error {
	raw, err := s.readBlob(e.manifest)
	if err != nil {
		return fmt.Errorf("image %s: manifest: %w", e.id, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("image %s: manifest %s: %w", e.id, e.manifest, err)
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if !exists(s.blobPath(d.Digest.String())) {
			return errdefs.FailedPrecondition("image %s: the store lacks blob %s (a pull does not download "+
				"a layer the store has unpacked from another source); import the image from an archive to export it", e.id, d.Digest)
		}
	}
	e.raw, e.m = raw, m
	return nil
}

func (s *Store) writeDockerArchive(tw *tar.Writer, images []*exported) error {
	var manifest tarball.Manifest
	w := &blobWriter{s: s, tw: tw, written: map[string]bool{}}
	for _, e := range images {
		m := e.m
		entry := tarball.Descriptor{Config: blobName(m.Config.Digest.String())}
		for _, n := range e.names {
			if !strings.Contains(n, "@") {
				entry.RepoTags = append(entry.RepoTags, familiarName(n))
			}
		}
		for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if err := w.blob(d.Digest.String()); err != nil {
				return err
			}
		}
		for _, l := range m.Layers {
			entry.Layers = append(entry.Layers, blobName(l.Digest.String()))
		}
		manifest = append(manifest, entry)
	}
	data, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	return writeTarFile(tw, "manifest.json", data)
}

func (s *Store) writeOCILayout(tw *tar.Writer, images []*exported) error {
	if err := writeTarFile(tw, "oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	w := &blobWriter{s: s, tw: tw, written: map[string]bool{}}
	for _, e := range images {
		raw, m := e.raw, e.m
		for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if err := w.blob(d.Digest.String()); err != nil {
				return err
			}
		}
		if err := w.blob(e.manifest); err != nil {
			return err
		}
		desc := v1.Descriptor{MediaType: m.MediaType, Size: int64(len(raw)), Digest: mustHash(e.manifest)}
		if desc.MediaType == "" {
			desc.MediaType = types.OCIManifestSchema1 // optional in OCI manifests
		}
		if len(e.names) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, n := range e.names {
			d := desc
			d.Annotations = map[string]string{annotationContainerdName: n}
			if !strings.Contains(n, "@") {
				d.Annotations[annotationRefName] = n[strings.LastIndexByte(n, ':')+1:]
			}
			index.Manifests = append(index.Manifests, d)
		}
	}
	data, err := json.Marshal(index)
	if err != nil {
		return err
	}
	return writeTarFile(tw, "index.json", data)
}

// blobWriter writes each stored blob once, under blobs/sha256/.
type blobWriter struct {
	s       *Store
	tw      *tar.Writer
	written map[string]bool
}

// blob copies a stored blob into the archive, checking on the way that
// it still has its digest.
func (w *blobWriter) blob(digest string) error {
	if w.written[digest] {
		return nil
	}
	if len(w.written) == 0 {
		for _, d := range []string{"blobs/", "blobs/sha256/"} {
			hdr := &tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: exportTime}
			if err := w.tw.WriteHeader(hdr); err != nil {
				return err
			}
		}
	}
	w.written[digest] = true
	f, err := os.Open(w.s.blobPath(digest))
	if err != nil {
		if os.IsNotExist(err) {
			return errdefs.FailedPrecondition("blob %s is missing from the store", digest)
		}
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: blobName(digest), Typeflag: tar.TypeReg, Mode: 0o644, Size: fi.Size(), ModTime: exportTime}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(w.tw, h), f); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("blob %s is corrupt on disk: its content has digest %s", digest, got)
	}
	return nil
}

func blobName(digest string) string {
	return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:")
}

func writeTarFile(tw *tar.Writer, name string, data []byte) error {
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: exportTime}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// familiarName is a normalised tag as `docker save` writes it: Docker
// Hub's registry and "library/" left out.
func familiarName(norm string) string {
	rest, ok := strings.CutPrefix(norm, "docker.io/")
	if !ok {
		return norm
	}
	if r, ok := strings.CutPrefix(rest, "library/"); ok && !strings.Contains(r, "/") {
		return r
	}
	return rest
}

// ConfigFile returns the raw config JSON of the image ref names (any form
// Get accepts), as the image carries it — for ImageStatus's verbose info.
// The bytes are the caller's. Errors: errdefs.ErrNotFound for an unknown
// image, errdefs.ErrFailedPrecondition for an image stored before the
// store kept blobs.
func (s *Store) ConfigFile(ref string) ([]byte, error) {
	s.mu.Lock()
	rec, _, err := s.resolveLocked(ref)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	id := rec.Image.ID
	if !slices.Contains(rec.Blobs, id) {
		s.mu.Unlock()
		return nil, errdefs.FailedPrecondition("image %s was stored before berth kept image configs; pull or import it again", id)
	}
	s.busyBlobs[id]++
	s.mu.Unlock()
	defer s.releaseBlobs([]string{id})
	return s.readBlob(id)
}
