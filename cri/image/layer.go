package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cri/errdefs"
)

// ensureLayer makes <root>/layers/<hex of diffID> exist, unpacking the
// layer if it does not. The caller holds the layer busy (see hold) so
// that Prune cannot delete it between here and the record that uses it.
// Two imports racing on the same layer both unpack it; the first rename
// wins and the loser discards its copy.
func (s *Store) ensureLayer(l layerSource, what string) error {
	final := s.layerDir(l.diffID)
	if exists(final) {
		return nil
	}
	tmp, err := os.MkdirTemp(s.tmpDir(), "layer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	// The layer's root becomes a directory in the container's root; the
	// layer's "./" entry, if any, overrides this.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := unpackLayer(l, tmp, what+": layer "+l.diffID); err != nil {
		return err
	}
	// Everything must be on disk before the rename makes the layer
	// visible, or a crash could leave a complete-looking, empty layer.
	if err := syncfs(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		if exists(final) {
			return nil // another import won the race
		}
		return fmt.Errorf("%s: layer %s: %w", what, l.diffID, err)
	}
	return nil
}

// unpackLayer extracts the layer's uncompressed stream into dir while
// hashing it, and fails unless the hash is the diff ID. Errors about the
// content are of class errdefs.ErrInvalidArgument and name the layer.
func unpackLayer(l layerSource, dir, what string) error {
	rc, err := l.open()
	if err != nil {
		return errdefs.InvalidArgument("%s: %w", what, err)
	}
	h := sha256.New()
	r := io.TeeReader(rc, h)
	if err := newExtractor(dir, what, true).extract(r); err != nil {
		rc.Close()
		return err
	}
	// The tar end marker and padding after it belong to the digest too.
	if _, err := io.Copy(io.Discard, r); err != nil {
		rc.Close()
		return classifyRead(err, "%s: %w", what, err)
	}
	if err := rc.Close(); err != nil {
		return errdefs.InvalidArgument("%s: %w", what, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != l.diffID {
		return errdefs.InvalidArgument("%s: content has digest %s, which does not match the diff ID in the image config", what, got)
	}
	return nil
}

func syncfs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// hold marks layers as in use by an import in progress; release undoes it.
func (s *Store) hold(diffIDs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range diffIDs {
		s.busy[d]++
	}
}

func (s *Store) release(diffIDs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range diffIDs {
		if s.busy[d]--; s.busy[d] <= 0 {
			delete(s.busy, d)
		}
	}
}

// retireUnusedLayersLocked moves every layer directory that no record
// references, no import holds and inUse (keys: diff IDs) does not name into
// a fresh directory under tmp/, and returns that directory for the caller to
// delete after releasing the lock. Moving is quick and atomic, so the lock is
// held only briefly and a crash leaves the layers where Open removes them.
func (s *Store) retireUnusedLayersLocked(inUse map[string]bool) (string, error) {
	referenced := map[string]bool{}
	for _, rec := range s.images {
		for _, d := range rec.Image.DiffIDs {
			referenced[d] = true
		}
	}
	entries, err := os.ReadDir(s.layersDir())
	if err != nil {
		return "", err
	}
	var trash string
	var errs []error
	for _, e := range entries {
		d := "sha256:" + e.Name()
		if !validDigest(d) || referenced[d] || s.busy[d] > 0 || inUse[d] {
			continue
		}
		if trash == "" {
			if trash, err = os.MkdirTemp(s.tmpDir(), "trash-"); err != nil {
				return "", err
			}
		}
		if err := os.Rename(s.layerDir(d), filepath.Join(trash, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("retire layer %s: %w", d, err))
		}
	}
	return trash, errors.Join(errs...)
}

// Prune deletes every unpacked layer that no image references and that
// inUse (keys: diff IDs "sha256:<hex>", the layers under running or
// created containers) does not name. It is safe to call at any time,
// including while imports run: layers an import is unpacking are kept.
func (s *Store) Prune(inUse map[string]bool) error {
	s.mu.Lock()
	trash, err := s.retireUnusedLayersLocked(inUse)
	s.mu.Unlock()
	if trash != "" {
		if rerr := os.RemoveAll(trash); rerr != nil {
			err = errors.Join(err, fmt.Errorf("delete retired layers: %w", rerr))
		}
	}
	return err
}
