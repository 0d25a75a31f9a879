package image

import (
	"errors"
	"fmt"
	"slices"

	"github.com/berth-project/berth/cri/errdefs"
)

// Remove removes what ref names (see Get for the forms) and then deletes the
// unpacked layers and blobs that no image references any more, except the
// layers inUse names (keys: diff IDs, the layers of existing containers).
//
// When ref is a tag and the image has other tags, only that tag is removed,
// as `crictl rmi` and `docker rmi` do; the image and its layers stay. In
// every other case — an ID, an ID prefix, a digest reference, or the image's
// last tag — the whole image is removed with all its names. The caller
// checks that no container uses the image before removing it.
//
// A pinned image (the builtin pause image) is not touched: removing it,
// or any of its names, fails with class errdefs.ErrFailedPrecondition
// until it is unpinned with Pin. Errors are of class errdefs.ErrNotFound
// when ref names no image (the CRI edge treats that as success,
// RemoveImage being idempotent). An error deleting layers or blobs is
// returned after the record is gone; a later Prune finishes the job.
func (s *Store) Remove(ref string, inUse map[string]bool) error {
	s.mu.Lock()
	rec, kind, err := s.resolveLocked(ref)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if rec.Image.Pinned {
		s.mu.Unlock()
		return errdefs.FailedPrecondition("image %q (%s) is pinned and cannot be removed: it is built into berthd "+
			"(the pause image every pod sandbox runs), and pinned images are kept by crictl rmi and image garbage collection alike "+
			"(crictl images -v shows pinned: true)", ref, rec.Image.ID)
	}
	if kind == byTag && len(rec.Image.RepoTags) > 1 {
		defer s.mu.Unlock()
		norm, _ := NormalizeRef(ref) // resolved by tag, so it parses
		next := rec.clone()
		next.Image.RepoTags = slices.DeleteFunc(next.Image.RepoTags, func(t string) bool { return t == norm })
		return s.writeRecordLocked(next)
	}
	if err := s.deleteRecordLocked(rec.Image.ID); err != nil {
		s.mu.Unlock()
		return err
	}
	g, err := s.onDiskLocked()
	var trash string
	if err == nil {
		trash, err = s.retireLocked(g, inUse)
	}
	s.mu.Unlock()
	if err = errors.Join(err, deleteTrash(trash)); err != nil {
		return fmt.Errorf("image %s removed, but deleting its layers and blobs failed: %w", rec.Image.ID, err)
	}
	return nil
}
