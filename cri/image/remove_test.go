package image

import (
	"errors"
	"os"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-project/berth/cri/errdefs"
)

func TestRemoveAndPruneLayers(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	base := baseLayer(t)
	a := buildImage(t, v1.Config{Cmd: []string{"a"}}, base, upperLayer(t, "a"))
	b := buildImage(t, v1.Config{Cmd: []string{"b"}}, base, upperLayer(t, "b"))
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"a:1": a, "a:2": a, "b:1": b}))
	baseID, upperA, upperB := diffIDs(t, a)[0], diffIDs(t, a)[1], diffIDs(t, b)[1]
	layerExists := func(d string) bool { _, err := os.Stat(s.layerDir(d)); return err == nil }

	// By tag, with another tag left: only the tag goes.
	if err := s.Remove("a:1", nil); err != nil {
		t.Fatal(err)
	}
	im, err := s.Get(imageID(t, a))
	if err != nil || !slices.Equal(im.RepoTags, []string{"docker.io/library/a:2"}) {
		t.Fatalf("after untagging: %v, %v", im.RepoTags, err)
	}
	if _, err := s.Get("a:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get(a:1) after untag: %v", err)
	}

	// By its last tag: the image goes; its own layer stays while in use.
	if err := s.Remove("a:2", map[string]bool{upperA: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(imageID(t, a)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("image a still present: %v", err)
	}
	if !layerExists(baseID) || !layerExists(upperA) || !layerExists(upperB) {
		t.Errorf("layers after removing a: base %v upperA %v upperB %v; want all kept (shared, in use, other image)",
			layerExists(baseID), layerExists(upperA), layerExists(upperB))
	}

	// Once no container uses it, Prune reclaims it.
	if err := s.Prune(nil); err != nil {
		t.Fatal(err)
	}
	if layerExists(upperA) || !layerExists(baseID) {
		t.Errorf("after Prune: upperA %v base %v; want upperA gone, base kept", layerExists(upperA), layerExists(baseID))
	}

	// By ID: everything goes.
	if err := s.Remove(imageID(t, b), nil); err != nil {
		t.Fatal(err)
	}
	if n := dirNames(t, s.layersDir()); len(n) != 0 {
		t.Errorf("layers/ = %v after removing every image", n)
	}
	if n := dirNames(t, s.tmpDir()); len(n) != 0 {
		t.Errorf("tmp/ = %v after removals", n)
	}
	for _, ref := range []string{"b:1", imageID(t, b)} {
		if err := s.Remove(ref, nil); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Remove(%s) of an absent image: %v, want NotFound", ref, err)
		}
	}
	reopened, err := Open(s.root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(reopened.List()); n != 0 {
		t.Errorf("reopened store lists %d images", n)
	}
}

func TestRemoveByDigestRemovesImage(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	img := buildImage(t, v1.Config{}, upperLayer(t, "d"))
	digest, _ := img.Digest()
	if _, err := s.Add(img, "example.com/d:1", "example.com/d:2", "example.com/d@"+digest.String()); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("example.com/d@"+digest.String(), nil); err != nil {
		t.Fatal(err)
	}
	if len(s.List()) != 0 || len(dirNames(t, s.layersDir())) != 0 {
		t.Error("removing by digest left the image or its layer")
	}
}
