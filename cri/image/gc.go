package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// garbage names layers (diff IDs) and blobs (digests) that may be
// unreferenced; retireLocked decides which really are.
type garbage struct {
	layers, blobs []string
}

// onDiskLocked lists every layer and blob on disk.
func (s *Store) onDiskLocked() (garbage, error) {
	var g garbage
	for _, dir := range []struct {
		path string
		into *[]string
	}{{s.layersDir(), &g.layers}, {s.blobsDir(), &g.blobs}} {
		entries, err := os.ReadDir(dir.path)
		if err != nil {
			return garbage{}, err
		}
		for _, e := range entries {
			if d := "sha256:" + e.Name(); validDigest(d) {
				*dir.into = append(*dir.into, d)
			}
		}
	}
	return g, nil
}

// retireLocked moves the candidates that no record references, no import
// or pull holds and inUse (keys: diff IDs) does not name into a fresh
// directory under tmp/, and returns that directory for the caller to
// delete after releasing the lock. Moving is quick and atomic, so the lock
// is held only briefly and a crash leaves the doomed files where Open
// removes them. Blobs are never protected by inUse: containers run on
// unpacked layers, not on blobs.
func (s *Store) retireLocked(g garbage, inUse map[string]bool) (string, error) {
	refLayers, refBlobs := map[string]bool{}, map[string]bool{}
	for _, rec := range s.images {
		for _, d := range rec.Image.DiffIDs {
			refLayers[d] = true
		}
		for _, d := range rec.Blobs {
			refBlobs[d] = true
		}
	}
	var trash string
	var errs []error
	move := func(from, name string) bool {
		if trash == "" {
			var err error
			if trash, err = os.MkdirTemp(s.tmpDir(), "trash-"); err != nil {
				errs = append(errs, err)
				return false
			}
		}
		err := os.Rename(from, filepath.Join(trash, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("retire %s: %w", from, err))
			return false
		}
		return true
	}
	for _, d := range g.layers {
		if refLayers[d] || s.busy[d] > 0 || inUse[d] {
			continue
		}
		if move(s.layerDir(d), "layer-"+d[len("sha256:"):]) {
			s.usage.forgetLayer(d)
		}
	}
	for _, d := range g.blobs {
		if refBlobs[d] || s.busyBlobs[d] > 0 {
			continue
		}
		if move(s.blobPath(d), "blob-"+d[len("sha256:"):]) {
			s.usage.forget(blobKey(d))
		}
	}
	return trash, errors.Join(errs...)
}

func deleteTrash(trash string) error {
	if trash == "" {
		return nil
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("delete retired layers and blobs: %w", err)
	}
	return nil
}

// Prune deletes every unpacked layer and blob that no image references,
// except layers that inUse (keys: diff IDs "sha256:<hex>", the layers
// under running or created containers) names. It is safe to call at any
// time, including while imports and pulls run: what they are storing is
// kept.
func (s *Store) Prune(inUse map[string]bool) error {
	s.mu.Lock()
	g, err := s.onDiskLocked()
	if err != nil {
		s.mu.Unlock()
		return err
	}
	trash, err := s.retireLocked(g, inUse)
	s.mu.Unlock()
	return errors.Join(err, deleteTrash(trash))
}
