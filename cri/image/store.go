package image

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-project/berth/cri/atomicfile"
	"github.com/berth-project/berth/cri/errdefs"
)

// Store is the image store rooted at one directory. It is safe for
// concurrent use. Heavy work (extracting, unpacking, deleting layers)
// happens outside the lock; the lock guards only the in-memory index and the
// short steps that publish or retract records and layers.
type Store struct {
	root string
	log  *slog.Logger
	// registries is the registry configuration pulls use (never nil);
	// SetRegistries swaps it whole, so a pull sees one configuration.
	registries atomic.Pointer[registryHosts]
	// pulls joins concurrent pulls of one reference.
	pulls flightGroup

	mu sync.Mutex
	// images maps an ID to its record; the index is small (hundreds), so
	// name lookups scan it rather than keeping secondary maps in sync.
	images map[string]*record
	// busy counts, per diff ID, the imports and pulls that are unpacking
	// or about to reference the layer, so that a concurrent Prune leaves
	// it alone.
	busy map[string]int
	// busyBlobs does the same for blobs, per digest.
	busyBlobs map[string]int
	// usage is what FsInfo reports, kept up to date as things come and go.
	usage diskUsage
}

func (s *Store) imagesDir() string { return filepath.Join(s.root, "images") }
func (s *Store) layersDir() string { return filepath.Join(s.root, "layers") }
func (s *Store) tmpDir() string    { return filepath.Join(s.root, "tmp") }

func (s *Store) recordPath(id string) string {
	return filepath.Join(s.imagesDir(), strings.TrimPrefix(id, "sha256:")+".json")
}

func (s *Store) layerDir(diffID string) string {
	return filepath.Join(s.layersDir(), strings.TrimPrefix(diffID, "sha256:"))
}

// Open opens (creating if needed) the store at root, e.g.
// /var/lib/berth/images, and recovers it after a crash: it removes the
// leftovers of interrupted work (everything in tmp/, hidden temporary files
// and trash in images/ and layers/) and loads every record. A record that
// cannot be read, or whose layers are missing, is logged and left out: the
// image counts as absent, so a new import or pull replaces it. Open does not
// delete unreferenced layers, because only the caller knows which layers
// running containers still use; call Prune for that. log (nil: discard)
// gets what the store notices on its own.
func Open(root string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open image store %s: %w", root, err)
	}
	s := &Store{
		root: abs, log: log, images: map[string]*record{}, busy: map[string]int{}, busyBlobs: map[string]int{},
		usage: newDiskUsage(),
	}
	s.registries.Store(&registryHosts{})
	for _, dir := range []string{s.root, s.imagesDir(), s.layersDir(), filepath.Dir(s.blobsDir()), s.blobsDir(), s.tmpDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	if err := s.removeLeftovers(); err != nil {
		return nil, fmt.Errorf("open image store %s: %w", abs, err)
	}
	if err := s.load(); err != nil {
		return nil, fmt.Errorf("open image store %s: %w", abs, err)
	}
	if err := s.usage.scan(s); err != nil {
		return nil, fmt.Errorf("open image store %s: %w", abs, err)
	}
	return s, nil
}

// removeLeftovers deletes what interrupted work leaves behind. Nothing in
// tmp/ is ever referenced, and names starting with "." in images/,
// layers/ and blobs/ are atomicfile temporaries or trash, never live
// entries.
func (s *Store) removeLeftovers() error {
	var errs []error
	if err := clearDir(s.tmpDir(), func(string) bool { return true }); err != nil {
		errs = append(errs, err)
	}
	hidden := func(name string) bool { return strings.HasPrefix(name, ".") }
	for _, dir := range []string{s.imagesDir(), s.layersDir(), s.blobsDir()} {
		if err := clearDir(dir, hidden); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// clearDir removes the entries of dir whose names match.
func clearDir(dir string, match func(string) bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if match(e.Name()) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// load reads every record. It trusts the layer directories over the records:
// an image whose layers are gone cannot be run, so it is treated as absent.
func (s *Store) load() error {
	entries, err := os.ReadDir(s.imagesDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		path := filepath.Join(s.imagesDir(), name)
		rec, err := s.loadRecord(path)
		if err != nil {
			s.log.Warn("image store: skipping unreadable image record", "path", path, "err", err)
			continue
		}
		s.images[rec.Image.ID] = rec
	}
	s.dropDuplicateTags()
	return nil
}

// loadRecord reads and checks one record.
func (s *Store) loadRecord(path string) (*record, error) {
	var rec record
	if err := atomicfile.ReadJSON(path, &rec); err != nil {
		return nil, err
	}
	if rec.Version != recordVersion {
		return nil, fmt.Errorf("unsupported record version %d", rec.Version)
	}
	hex, ok := strings.CutPrefix(rec.Image.ID, "sha256:")
	if !ok || !isHex(hex, 64) || s.recordPath(rec.Image.ID) != path {
		return nil, fmt.Errorf("record holds image ID %q", rec.Image.ID)
	}
	for _, d := range append(slices.Clone(rec.Blobs), rec.Manifest) {
		if d != "" && !validDigest(d) {
			return nil, fmt.Errorf("record holds blob digest %q", d)
		}
	}
	for _, d := range rec.Image.DiffIDs {
		if !validDigest(d) {
			return nil, fmt.Errorf("record holds diff ID %q", d)
		}
		if _, err := os.Stat(s.layerDir(d)); err != nil {
			return nil, fmt.Errorf("layer %s: %w", d, err)
		}
	}
	return &rec, nil
}

// dropDuplicateTags restores the one-image-per-tag rule if the records on
// disk break it. publishLocked writes a tag's old owner before its new one,
// so a crash cannot cause this, but records restored or copied by hand can;
// the most recently created image keeps the tag, which is what a later
// import would have done.
func (s *Store) dropDuplicateTags() {
	owner := map[string]*record{}
	for _, rec := range s.sortedRecords() {
		for _, tag := range rec.Image.RepoTags {
			if prev, ok := owner[tag]; !ok || prev.Created.Before(rec.Created) {
				owner[tag] = rec
			}
		}
	}
	for _, rec := range s.images {
		rec.Image.RepoTags = slices.DeleteFunc(rec.Image.RepoTags, func(tag string) bool {
			return owner[tag] != rec
		})
	}
}

// sortedRecords returns the records ordered by ID. Callers hold s.mu (or
// own s exclusively, as Open does).
func (s *Store) sortedRecords() []*record {
	recs := make([]*record, 0, len(s.images))
	for _, rec := range s.images {
		recs = append(recs, rec)
	}
	slices.SortFunc(recs, func(a, b *record) int { return strings.Compare(a.Image.ID, b.Image.ID) })
	return recs
}

// List returns every image, sorted by ID. The values are copies.
func (s *Store) List() []Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Image, 0, len(s.images))
	for _, rec := range s.sortedRecords() {
		out = append(out, rec.Image.clone())
	}
	return out
}

// Get returns a copy of the image that ref names. ref may be an ID
// ("sha256:<hex>" or bare hex), a unique ID prefix of at least 12 hex
// digits (optionally after "sha256:"), a tag in any form users write it
// ("busybox", "busybox:1.36", "docker.io/library/busybox:latest",
// "localhost:5000/x:y") or a digest reference ("busybox@sha256:<hex>",
// matched against RepoDigests). A name is tried before an ID prefix, so an
// image named "deadbeefcafe" is never shadowed by an ID. Errors are of class
// errdefs.ErrNotFound when nothing matches and errdefs.ErrInvalidArgument
// when ref cannot be parsed or the prefix is ambiguous.
func (s *Store) Get(ref string) (Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, _, err := s.resolveLocked(ref)
	if err != nil {
		return Image{}, err
	}
	return rec.Image.clone(), nil
}

// Pin sets or clears the image's Pinned flag (the kubelet never garbage
// collects a pinned image; berth pins its sandbox image). ref is resolved as
// by Get.
func (s *Store) Pin(ref string, pinned bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, _, err := s.resolveLocked(ref)
	if err != nil {
		return err
	}
	if rec.Image.Pinned == pinned {
		return nil
	}
	next := rec.clone()
	next.Image.Pinned = pinned
	return s.writeRecordLocked(next)
}

// writeRecordLocked persists rec and then publishes it in memory, so memory
// never shows what the disk does not hold.
func (s *Store) writeRecordLocked(rec *record) error {
	path := s.recordPath(rec.Image.ID)
	if err := atomicfile.WriteJSON(path, rec); err != nil {
		return fmt.Errorf("image %s: %w", rec.Image.ID, err)
	}
	s.images[rec.Image.ID] = rec
	s.usage.setFile(recordKey(rec.Image.ID), path)
	return nil
}

// deleteRecordLocked removes rec from disk, then from memory.
func (s *Store) deleteRecordLocked(id string) error {
	if err := os.Remove(s.recordPath(id)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove image %s: %w", id, err)
	}
	delete(s.images, id)
	s.usage.forget(recordKey(id))
	return nil
}

// newRecord wraps an image for storing now.
func newRecord(img Image) *record {
	return &record{Version: recordVersion, Image: img, Created: time.Now().UTC()}
}

// notFound is the error for a ref that names no image.
func notFound(ref string) error {
	return errdefs.NotFound("image %q not found", ref)
}
