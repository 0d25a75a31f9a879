package image

import (
	"context"
	"errors"
	"os"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/berth-project/berth/cri/errdefs"
)

// layerJobs bounds how many layers one pull or import fetches and unpacks
// at a time.
const layerJobs = 3

// work is one import, pull or Add storing images. It holds the layers and
// blobs it stores, so that a concurrent Prune or Remove leaves them alone,
// and remembers which ones it created. It ends with commit, which
// publishes the records, and close, which releases the holds and — unless
// the work committed — deletes what it created that nothing else
// references: a failed or cancelled pull leaves no blob or layer behind.
// Its fields are guarded by the store's mu.
type work struct {
	s                     *Store
	what                  string // names the work in errors
	heldLayers, heldBlobs []string
	newLayers, newBlobs   []string
	committed             bool
}

func (s *Store) begin(what string) *work { return &work{s: s, what: what} }

func (w *work) holdBlob(d string) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.busyBlobs[d]++
	w.heldBlobs = append(w.heldBlobs, d)
}

func (w *work) holdLayer(d string) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.busy[d]++
	w.heldLayers = append(w.heldLayers, d)
}

// ensureBlob makes b present in blobs/, downloading it unless the store
// holds it already, and holds it. It returns the blob's digest and size.
// The hold comes before the look, so a concurrent Prune either sees the
// hold or has already removed the blob, which is then fetched again.
func (w *work) ensureBlob(ctx context.Context, b blobSource) (string, int64, error) {
	if b.digest != "" {
		if !validDigest(b.digest) {
			return "", 0, errdefs.InvalidArgument("%s: unsupported digest %q", b.what, b.digest)
		}
		w.holdBlob(b.digest)
		if fi, err := os.Stat(w.s.blobPath(b.digest)); err == nil && (b.size < 0 || fi.Size() == b.size) {
			return b.digest, fi.Size(), nil
		}
	}
	tmp, digest, size, err := w.s.download(ctx, b)
	if err != nil {
		return "", 0, err
	}
	if b.digest == "" {
		w.holdBlob(digest)
	}
	created, err := w.s.publishBlob(tmp, digest)
	if created {
		w.s.mu.Lock()
		w.newBlobs = append(w.newBlobs, digest)
		w.s.mu.Unlock()
	}
	if err != nil {
		os.Remove(tmp)
		return "", 0, err
	}
	return digest, size, nil
}

// ensureLayer makes the layer with diffID present, unpacking it from its
// stored blob unless it is already there, and holds it.
func (w *work) ensureLayer(ctx context.Context, diffID, blobDigest string) error {
	w.holdLayer(diffID)
	if exists(w.s.layerDir(diffID)) {
		return nil
	}
	created, u, err := w.s.unpackBlob(ctx, diffID, blobDigest, w.what)
	if created {
		w.s.mu.Lock()
		w.newLayers = append(w.newLayers, diffID)
		w.s.usage.setLayer(diffID, u)
		w.s.mu.Unlock()
	}
	return err
}

// storeLayer stores a layer's blob and unpacks it, unless the layer is
// unpacked already and its blob would have to be downloaded: a pull never
// fetches a layer the store has, even from another source (an archive
// that shipped it uncompressed, a store that predates blob keeping). Such
// an image runs, but cannot be exported until something brings the blob.
// It fills in the blob's digest and size.
func (w *work) storeLayer(ctx context.Context, l *layerSource) error {
	if l.blob.remote && validDigest(l.blob.digest) {
		w.holdLayer(l.diffID)
		if exists(w.s.layerDir(l.diffID)) {
			w.holdBlob(l.blob.digest) // if it is there, it stays
			return nil
		}
	}
	d, size, err := w.ensureBlob(ctx, l.blob)
	if err != nil {
		return err
	}
	l.blob.digest, l.blob.size = d, size
	return w.ensureLayer(ctx, l.diffID, d)
}

// storeSource stores everything src needs: each layer's blob and its
// unpacked form (up to layerJobs at a time), the config, the manifest (one
// the store writes if src has none) and the indexes. It fills in the
// layers' digests and sizes and src's manifestDigest and blobs.
func (w *work) storeSource(ctx context.Context, src *source) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(layerJobs)
	for i := range src.layers {
		l := &src.layers[i]
		g.Go(func() error { return w.storeLayer(gctx, l) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	cfg, _, err := w.ensureBlob(ctx, src.configBlob())
	if err != nil {
		return err
	}
	blobs := []string{cfg}
	for _, l := range src.layers {
		blobs = append(blobs, l.blob.digest)
	}
	if src.manifest == nil {
		if src.manifest, err = src.writeManifest(); err != nil {
			return err
		}
	}
	src.manifestDigest, _, err = w.ensureBlob(ctx, bytesBlob("manifest", src.manifest, "", ""))
	if err != nil {
		return err
	}
	blobs = append(blobs, src.manifestDigest)
	for _, idx := range src.indexes {
		d, _, err := w.ensureBlob(ctx, bytesBlob("index", idx, "", ""))
		if err != nil {
			return err
		}
		blobs = append(blobs, d)
	}
	slices.Sort(blobs)
	src.blobs = slices.Compact(blobs)
	return nil
}

// commit publishes the sources' records (see publishLocked) and returns
// the stored images, in order.
func (w *work) commit(srcs []*source) ([]Image, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	out := make([]Image, 0, len(srcs))
	for _, src := range srcs {
		img, err := w.s.publishLocked(src.image(), src.manifestDigest, src.blobs)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	w.committed = true
	return out, nil
}

// close releases the holds and, unless the work committed, deletes the
// layers and blobs it created that nothing else references or holds. It
// uses no context: cleaning up must happen even when the work was
// cancelled.
func (w *work) close() {
	s := w.s
	s.mu.Lock()
	for _, d := range w.heldLayers {
		if s.busy[d]--; s.busy[d] <= 0 {
			delete(s.busy, d)
		}
	}
	for _, d := range w.heldBlobs {
		if s.busyBlobs[d]--; s.busyBlobs[d] <= 0 {
			delete(s.busyBlobs, d)
		}
	}
	w.heldLayers, w.heldBlobs = nil, nil
	var trash string
	var err error
	if !w.committed {
		trash, err = s.retireLocked(garbage{layers: w.newLayers, blobs: w.newBlobs}, nil)
	}
	s.mu.Unlock()
	if err = errors.Join(err, deleteTrash(trash)); err != nil {
		w.s.log.Warn("image store: cleaning up after a failed store; Prune will retry", "source", w.what, "err", err)
	}
}
