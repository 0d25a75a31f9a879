package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-project/berth/cri/errdefs"
)

// builtinTime is the creation time of builtin images and the mtime of
// their files: fixed, so that the same inputs give the same image ID on
// every start.
var builtinTime = time.Unix(0, 0).UTC()

// EnsureBuiltin stores a single-layer image made of files (path in the
// image → content; each file gets mode 0755, owner root, and its parent
// directories are created) and cfg, under the tag ref, and pins it. The
// image is deterministic — fixed times, sorted entries, no compression —
// so the same inputs give the same image ID on every start and calling it
// again is cheap. berthd calls it at startup for the pause image, so that
// a sandbox never needs a registry.
//
// If ref named another pinned image (an older builtin), that image loses
// the tag and, having no tag left, its pin, so that image garbage
// collection can remove it once no container uses it. Errors are of class
// errdefs.ErrInvalidArgument for a digest ref, no files, or a path that is
// empty or leaves the image root.
func (s *Store) EnsureBuiltin(ref string, files map[string][]byte, cfg v1.Config) (Image, error) {
	norm, err := NormalizeRef(ref)
	if err != nil {
		return Image{}, err
	}
	if strings.Contains(norm, "@") {
		return Image{}, errdefs.InvalidArgument("builtin image %s: want a tag, not a digest", ref)
	}
	what := "builtin image " + norm
	src, err := builtinSource(what, files, cfg)
	if err != nil {
		return Image{}, err
	}
	src.tags, src.pin = []string{norm}, true
	prev, prevErr := s.Get(norm)
	out, err := s.store(context.Background(), []*source{src}, what)
	if err != nil {
		return Image{}, err
	}
	if prevErr == nil && prev.ID != out[0].ID && prev.Pinned {
		if err := s.unpinIfUntagged(prev.ID); err != nil {
			return Image{}, err
		}
	}
	return out[0], nil
}

// unpinIfUntagged clears the pin of an image that has no tag left.
func (s *Store) unpinIfUntagged(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.images[id]
	if !ok || len(rec.Image.RepoTags) > 0 || !rec.Image.Pinned {
		return nil
	}
	next := rec.clone()
	next.Image.Pinned = false
	return s.writeRecordLocked(next)
}

// builtinSource builds the image's layer, config and manifest in memory.
func builtinSource(what string, files map[string][]byte, cfg v1.Config) (*source, error) {
	layer, err := builtinLayer(what, files)
	if err != nil {
		return nil, err
	}
	diffID := mustHash(digestOf(layer))
	cf := v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: builtinTime},
		Config:       *cfg.DeepCopy(),
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}},
		History:      []v1.History{{Created: v1.Time{Time: builtinTime}, CreatedBy: "berth builtin image"}},
	}
	if runtime.GOARCH == "arm" {
		cf.Variant = hostPlatform().variant
	}
	configRaw, err := json.Marshal(cf)
	if err != nil {
		return nil, err
	}
	src, err := newSource(what, configRaw, []layerSource{{
		blob: bytesBlob(what+": layer", layer, "", types.OCIUncompressedLayer),
	}})
	if err != nil {
		return nil, err
	}
	// The layer is stored uncompressed: its digest is its diff ID, and
	// the manifest the store writes for a source without one is as
	// deterministic as the rest.
	src.layers[0].blob.size = int64(len(layer))
	src.manifest, err = src.writeManifest()
	if err != nil {
		return nil, err
	}
	src.configWant = src.id
	return src, nil
}

// builtinLayer writes the files, and the directories above them, as an
// uncompressed tar with sorted entries, root ownership and fixed times.
func builtinLayer(what string, files map[string][]byte) ([]byte, error) {
	if len(files) == 0 {
		return nil, errdefs.InvalidArgument("%s: no files", what)
	}
	dirs := map[string]bool{}
	contents := map[string][]byte{} // by clean path
	for p, body := range files {
		clean, ok := cleanName(p)
		if !ok || clean == "." || clean != strings.TrimLeft(p, "/") {
			return nil, errdefs.InvalidArgument("%s: file path %q: want a clean path inside the image", what, p)
		}
		if _, dup := contents[clean]; dup {
			return nil, errdefs.InvalidArgument("%s: file %q is given twice", what, clean)
		}
		contents[clean] = body
		for d := path.Dir(clean); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		if _, clash := contents[d]; clash {
			return nil, errdefs.InvalidArgument("%s: %q is both a file and a directory", what, d)
		}
	}
	type entry struct {
		name string
		dir  bool
	}
	var entries []entry
	for d := range dirs {
		entries = append(entries, entry{name: d, dir: true})
	}
	for n := range contents {
		entries = append(entries, entry{name: n})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o755, ModTime: builtinTime, Format: tar.FormatPAX}
		var body []byte
		if e.dir {
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.name+"/"
		} else {
			body = contents[e.name]
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if _, err := tw.Write(body); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return buf.Bytes(), nil
}
