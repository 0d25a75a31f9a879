package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-project/berth/cri/errdefs"
)

// Blobs are kept as shipped — manifests, indexes, configs, compressed
// layers — content-addressed under <root>/blobs/sha256/<hex>, so that
// Export writes an image byte for byte as it was pulled or imported and a
// pull never downloads a blob the store holds. A blob becomes visible by a
// rename, only after its content was hashed and found to be its digest.

func (s *Store) blobsDir() string { return filepath.Join(s.root, "blobs", "sha256") }

func (s *Store) blobPath(digest string) string {
	return filepath.Join(s.blobsDir(), strings.TrimPrefix(digest, "sha256:"))
}

// blobSource is one blob to keep, as a source provides it.
type blobSource struct {
	// digest is the digest the content must have, "sha256:<hex>"; ""
	// when only reading it tells (the layers of a docker archive).
	digest string
	// size is the length the content must have; -1 when unknown.
	size int64
	// mediaType is what a manifest the store writes says about it.
	mediaType types.MediaType
	// what names the blob in errors ("layer sha256:…").
	what string
	// open returns the content. The source classifies its errors, and
	// those of reading the stream, with errdefs.
	open func(ctx context.Context) (io.ReadCloser, error)
	// remote marks a blob that costs a download: a layer blob the store
	// lacks is not fetched when the layer is already unpacked.
	remote bool
	// local is a file holding the blob on the store's file system (an
	// extracted archive), linked instead of copied when it can be.
	local string
}

// bytesBlob is a blob the source already holds in memory. want is the
// digest it must have ("" for none: it is then what the bytes hash to).
func bytesBlob(what string, data []byte, want string, mt types.MediaType) blobSource {
	if want == "" {
		want = digestOf(data)
	}
	return blobSource{
		digest: want, size: int64(len(data)), mediaType: mt, what: what,
		open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		},
	}
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// download copies the blob into a new file under tmp/ while hashing it,
// and checks the content against the digest and size the source gave. It
// returns the temporary file, which the caller renames or removes, with
// the content's digest and size. A blob whose content does not match is an
// error of class errdefs.ErrInvalidArgument saying "digest mismatch" (or
// "size mismatch") and naming the blob; errors reading the source are the
// source's own; failures to write are not classified. A blob in a local
// file (an extracted archive) is hard-linked rather than copied.
func (s *Store) download(ctx context.Context, b blobSource) (tmp, digest string, size int64, err error) {
	if b.local != "" {
		if tmp, ok := s.linkLocal(b.local); ok {
			digest, size, err := verifyFile(ctx, tmp, b)
			if err != nil {
				os.Remove(tmp)
				return "", "", 0, err
			}
			return tmp, digest, size, nil
		}
	}
	rc, err := b.open(ctx)
	if err != nil {
		return "", "", 0, err
	}
	defer rc.Close()
	f, err := os.CreateTemp(s.tmpDir(), "blob-")
	if err != nil {
		return "", "", 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if digest, size, err = copyVerified(ctx, f, rc, b); err != nil {
		return "", "", 0, err
	}
	if err = f.Sync(); err != nil {
		return "", "", 0, fmt.Errorf("%s: sync: %w", b.what, err)
	}
	if err = f.Close(); err != nil {
		return "", "", 0, fmt.Errorf("%s: close: %w", b.what, err)
	}
	return f.Name(), digest, size, nil
}

// copyVerified copies src to dst while hashing it (dst nil: only hashes)
// and checks what it read against b's digest and size.
func copyVerified(ctx context.Context, dst io.Writer, src io.Reader, b blobSource) (string, int64, error) {
	var r io.Reader = ctxReader{ctx: ctx, r: src}
	if b.size >= 0 {
		r = io.LimitReader(r, b.size+1) // one more, to notice a longer blob
	}
	h := sha256.New()
	w := &trackingWriter{w: io.Discard}
	if dst != nil {
		w.w = dst
	}
	n, copyErr := io.Copy(io.MultiWriter(w, h), r)
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	switch {
	case w.err != nil:
		return "", 0, fmt.Errorf("%s: write: %w", b.what, w.err)
	case b.size >= 0 && n > b.size:
		return "", 0, errdefs.InvalidArgument("%s: size mismatch: the content is longer than the %d bytes its descriptor gives", b.what, b.size)
	case b.digest != "" && n == b.size && digest != b.digest:
		// Checked before the read error: a registry client that verifies
		// digests itself fails the last read of a corrupt blob.
		return "", 0, errdefs.InvalidArgument("%s: digest mismatch: the content has digest %s", b.what, digest)
	case copyErr != nil:
		return "", 0, copyErr
	case b.size >= 0 && n != b.size:
		return "", 0, errdefs.InvalidArgument("%s: size mismatch: %d bytes, want %d", b.what, n, b.size)
	case b.digest != "" && digest != b.digest:
		return "", 0, errdefs.InvalidArgument("%s: digest mismatch: the content has digest %s", b.what, digest)
	}
	return digest, n, nil
}

// linkLocal hard-links a local file to a new name under tmp/, if the file
// is a regular file on the store's file system.
func (s *Store) linkLocal(path string) (string, bool) {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	f, err := os.CreateTemp(s.tmpDir(), "blob-")
	if err != nil {
		return "", false
	}
	tmp := f.Name()
	f.Close()
	os.Remove(tmp)
	if err := os.Link(path, tmp); err != nil {
		return "", false
	}
	return tmp, true
}

// verifyFile checks a linked file like a download and makes it durable
// (whoever wrote it did not fsync it).
func verifyFile(ctx context.Context, path string, b blobSource) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	digest, n, err := copyVerified(ctx, nil, &classifiedReader{rc: f, classify: func(err error) error {
		return errdefs.InvalidArgument("%s: %w", b.what, err)
	}}, b)
	if err != nil {
		return "", 0, err
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("%s: sync: %w", b.what, err)
	}
	return digest, n, nil
}

// publishBlob renames a downloaded blob into blobs/. It reports whether
// this call created the blob: if another pull or import stored the same
// content first, the copy is discarded.
func (s *Store) publishBlob(tmp, digest string) (created bool, err error) {
	final := s.blobPath(digest)
	if exists(final) {
		return false, os.Remove(tmp)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return false, fmt.Errorf("store blob %s: %w", digest, err)
	}
	if err := syncfsDir(s.blobsDir()); err != nil {
		return true, err
	}
	s.mu.Lock()
	s.usage.setFile(blobKey(digest), final)
	s.mu.Unlock()
	return true, nil
}

// readBlob returns a stored blob's content, checked against its digest
// (blobs are small when read whole: configs and manifests).
func (s *Store) readBlob(digest string) ([]byte, error) {
	data, err := os.ReadFile(s.blobPath(digest))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.FailedPrecondition("blob %s is missing from the store", digest)
		}
		return nil, err
	}
	if got := digestOf(data); got != digest {
		return nil, fmt.Errorf("blob %s is corrupt on disk: its content has digest %s", digest, got)
	}
	return data, nil
}

// syncfsDir makes a rename in dir durable.
func syncfsDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// ctxReader stops a long copy or unpack once its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// classifiedReader passes a stream's errors through classify, so that a
// failure half-way through a blob is classified like one at its start.
type classifiedReader struct {
	rc       io.ReadCloser
	classify func(error) error
}

func (r *classifiedReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		err = r.classify(err)
	}
	return n, err
}

func (r *classifiedReader) Close() error { return r.rc.Close() }

// classifiedOpen wraps open so that its errors and its stream's errors go
// through classify.
func classifiedOpen(open func(context.Context) (io.ReadCloser, error), classify func(error) error) func(context.Context) (io.ReadCloser, error) {
	return func(ctx context.Context) (io.ReadCloser, error) {
		rc, err := open(ctx)
		if err != nil {
			return nil, classify(err)
		}
		return &classifiedReader{rc: rc, classify: classify}, nil
	}
}
