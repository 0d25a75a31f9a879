package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cri/errdefs"
)

// unpackBlob unpacks the stored layer blob into <root>/layers/<hex of
// diffID>, verifying the uncompressed stream against the diff ID, and
// returns the new layer's usage. It is the caller's business to check that
// the layer is missing and to hold it. Two pulls or imports racing on the
// same layer both unpack it; the first rename wins and the loser discards
// its copy (created is false then).
func (s *Store) unpackBlob(ctx context.Context, diffID, blobDigest, what string) (created bool, u usage, err error) {
	tmp, err := os.MkdirTemp(s.tmpDir(), "layer-")
	if err != nil {
		return false, u, err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	// The layer's root becomes a directory in the container's root; the
	// layer's "./" entry, if any, overrides this.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return false, u, err
	}
	what = what + ": layer " + diffID
	if err := unpackLayer(ctx, s.blobPath(blobDigest), diffID, tmp, what); err != nil {
		return false, u, err
	}
	// Everything must be on disk before the rename makes the layer
	// visible, or a crash could leave a complete-looking, empty layer.
	if err := syncfs(tmp); err != nil {
		return false, u, err
	}
	if u, err = walkUsage(tmp); err != nil {
		return false, u, err
	}
	final := s.layerDir(diffID)
	if err := os.Rename(tmp, final); err != nil {
		if exists(final) {
			return false, u, nil // another import won the race
		}
		return false, u, fmt.Errorf("%s: %w", what, err)
	}
	return true, u, nil
}

// unpackLayer extracts the layer blob stored at blobPath (gzip, zstd or
// plain tar) into dir while hashing the uncompressed stream, and fails
// unless the hash is the diff ID. Errors about the content are of class
// errdefs.ErrInvalidArgument and name the layer.
func unpackLayer(ctx context.Context, blobPath, diffID, dir, what string) error {
	fi, err := os.Stat(blobPath)
	if err != nil {
		return err
	}
	l, err := partial.CompressedToLayer(&fileBlob{path: blobPath, size: fi.Size()})
	if err != nil {
		return errdefs.InvalidArgument("%s: %w", what, err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return errdefs.InvalidArgument("%s: %w", what, err)
	}
	h := sha256.New()
	r := io.TeeReader(ctxReader{ctx: ctx, r: rc}, h)
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
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
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

// fileBlob is a stored layer blob, compressed (gzip, zstd) or not;
// go-containerregistry's partial package detects which and decompresses
// it.
type fileBlob struct {
	path string
	size int64
}

var _ partial.CompressedLayer = (*fileBlob)(nil)

// Digest hashes the file. Unpacking never needs it (it verifies diff IDs),
// so it is computed only on demand.
func (b *fileBlob) Digest() (v1.Hash, error) {
	f, err := os.Open(b.path)
	if err != nil {
		return v1.Hash{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}, nil
}

func (b *fileBlob) Compressed() (io.ReadCloser, error) { return os.Open(b.path) }

func (b *fileBlob) Size() (int64, error) { return b.size, nil }

func (b *fileBlob) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }
