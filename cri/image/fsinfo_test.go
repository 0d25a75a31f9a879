package image

import (
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// walkStore measures what FsInfo counts the slow way.
func walkStore(t *testing.T, s *Store) usage {
	t.Helper()
	var total usage
	for _, dir := range []string{s.imagesDir(), s.blobsDir()} {
		for _, n := range dirNames(t, dir) {
			u, err := walkUsage(filepath.Join(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			total.bytes, total.inodes = total.bytes+u.bytes, total.inodes+u.inodes
		}
	}
	for _, n := range dirNames(t, s.layersDir()) {
		u, err := walkUsage(filepath.Join(s.layersDir(), n))
		if err != nil {
			t.Fatal(err)
		}
		total.bytes, total.inodes = total.bytes+u.bytes, total.inodes+u.inodes
	}
	return total
}

// FsInfo keeps its totals up to date without walking the store per call.
func TestFsInfoTracksChanges(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	check := func(what string) {
		t.Helper()
		_, used, inodes, err := s.FsInfo()
		if err != nil {
			t.Fatal(err)
		}
		if want := walkStore(t, s); used != want.bytes || inodes != want.inodes {
			t.Errorf("%s: FsInfo = %d bytes %d inodes; the store holds %d bytes %d inodes", what, used, inodes, want.bytes, want.inodes)
		}
	}
	check("empty store")
	a := buildImage(t, v1.Config{Cmd: []string{"a"}}, baseLayer(t), upperLayer(t, "a"))
	b := buildImage(t, v1.Config{Cmd: []string{"b"}}, upperLayer(t, "b"))
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"a:1": a, "b:1": b}))
	check("after an import")
	if err := s.Pin("a:1", true); err != nil {
		t.Fatal(err)
	}
	check("after rewriting a record")

	reopened, err := Open(s.root, nil)
	if err != nil {
		t.Fatal(err)
	}
	s = reopened
	check("after Open")

	// Only the first call walks: a file added behind the store's back is
	// not seen (this is how the test knows nothing is walked any more).
	_, before, _, _ := s.FsInfo()
	layer := s.layerDir(diffIDs(t, b)[0])
	if err := os.WriteFile(filepath.Join(layer, "behind-the-back"), make([]byte, 1<<16), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, after, _, _ := s.FsInfo(); after != before {
		t.Errorf("FsInfo walked the layers again: %d bytes, then %d", before, after)
	}
	os.Remove(filepath.Join(layer, "behind-the-back"))

	if err := s.Pin("a:1", false); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("a:1", nil); err != nil {
		t.Fatal(err)
	}
	check("after a removal")
	if err := s.Remove("b:1", nil); err != nil {
		t.Fatal(err)
	}
	if _, used, inodes, _ := s.FsInfo(); used != 0 || inodes != 0 {
		t.Errorf("empty store: FsInfo = %d bytes %d inodes", used, inodes)
	}
}
