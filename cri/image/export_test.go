package image

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-project/berth/cri/atomicfile"
	"github.com/berth-project/berth/cri/errdefs"
)

func exportTo(t *testing.T, s *Store, format string, refs ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), format+".tar")
	var buf bytes.Buffer
	if err := s.Export(&buf, format, refs...); err != nil {
		t.Fatalf("Export(%s, %v): %v", format, refs, err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sameImage(t *testing.T, what string, got, want Image) {
	t.Helper()
	tags := func(img Image) []string { s := slices.Clone(img.RepoTags); slices.Sort(s); return s }
	if got.ID != want.ID || !slices.Equal(tags(got), tags(want)) || !slices.Equal(got.DiffIDs, want.DiffIDs) {
		t.Errorf("%s: got ID %s tags %v diff IDs %v; want %s %v %v", what,
			got.ID, got.RepoTags, got.DiffIDs, want.ID, want.RepoTags, want.DiffIDs)
	}
}

// import → export → import into a fresh store gives the same image, in
// both formats, from both kinds of archive.
func TestExportImportRoundTrip(t *testing.T) {
	requiresRoot(t)
	a := buildImage(t, testConfig, baseLayer(t), upperLayer(t, "a"))
	b := buildImage(t, v1.Config{Cmd: []string{"b"}}, upperLayer(t, "b"))
	sources := map[string]string{
		"docker archive": writeDockerArchive(t, map[string]v1.Image{"busybox:1.36": a, "example.com/team/a:2": a, "b:1": b}),
		"oci layout": writeOCIArchive(t, func(p layout.Path) error {
			if err := p.AppendImage(a, layout.WithAnnotations(map[string]string{
				"io.containerd.image.name": "docker.io/library/busybox:1.36",
			})); err != nil {
				return err
			}
			return p.AppendImage(b, layout.WithAnnotations(map[string]string{"io.containerd.image.name": "b:1"}))
		}),
	}
	for srcName, archive := range sources {
		for _, format := range []string{FormatDocker, FormatOCI} {
			t.Run(srcName+" to "+format, func(t *testing.T) {
				s := openStore(t)
				mustImport(t, s, archive)
				wantA, _ := s.Get(imageID(t, a))
				wantB, _ := s.Get(imageID(t, b))
				// By ID: all the image's tags; by tag: that tag.
				path := exportTo(t, s, format, imageID(t, a), "b:1")
				fresh := openStore(t)
				got := mustImport(t, fresh, path)
				if len(got) != 2 {
					t.Fatalf("re-import gave %d images", len(got))
				}
				sameImage(t, "image a", got[0], wantA)
				sameImage(t, "image b", got[1], wantB)
				if format == FormatOCI {
					// The same manifest, so the same digests.
					if !slices.Equal(got[1].RepoDigests, wantB.RepoDigests) && srcName == "oci layout" {
						t.Errorf("RepoDigests = %v, want %v", got[1].RepoDigests, wantB.RepoDigests)
					}
				}
				// The blobs went over byte for byte (a docker archive
				// carries no manifest: the importing store writes one).
				if want, got := dirNames(t, s.blobsDir()), dirNames(t, fresh.blobsDir()); format == FormatOCI && !slices.Equal(want, got) {
					t.Errorf("blobs after the round trip = %v, want %v", got, want)
				}
				for _, img := range []v1.Image{a, b} {
					cfg, layers := blobDigests(t, img)
					for _, d := range append(layers, cfg) {
						if !exists(fresh.blobPath(d)) {
							t.Errorf("blob %s did not go over", d)
						}
					}
				}
				// Exporting again gives the same bytes.
				again := exportTo(t, fresh, format, imageID(t, a), "b:1")
				if x, y := readAll(t, path), readAll(t, again); !bytes.Equal(x, y) {
					t.Error("exporting the re-imported images gives other bytes")
				}
			})
		}
	}
}

func readAll(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// What Export writes, go-containerregistry reads, and the blobs are the
// registry's.
func TestExportIsReadableByOthers(t *testing.T) {
	requiresRoot(t)
	r := newTestRegistry(t)
	img := buildImage(t, testConfig, baseLayer(t), upperLayer(t, "x"))
	digest := r.push("team/x:1", img)
	s := insecureStore(t, r)
	ref := r.ref("team/x:1")
	mustPull(t, s, ref, nil)

	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	fromDocker, err := tarball.ImageFromPath(exportTo(t, s, FormatDocker, ref), &tag)
	if err != nil {
		t.Fatalf("docker archive: %v", err)
	}
	if id, _ := fromDocker.ConfigName(); id.String() != imageID(t, img) {
		t.Errorf("docker archive holds config %s, want %s", id, imageID(t, img))
	}

	dir := t.TempDir()
	if err := newExtractor(dir, "test", false).extract(bytes.NewReader(readAll(t, exportTo(t, s, FormatOCI, ref)))); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("index.json = %+v, %v", im, err)
	}
	d := im.Manifests[0]
	if d.Digest.String() != digest || d.Annotations["io.containerd.image.name"] != ref || d.Annotations["org.opencontainers.image.ref.name"] != "1" {
		t.Errorf("index.json descriptor = %+v, want digest %s named %s", d, digest, ref)
	}
	fromOCI, err := idx.Image(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := fromOCI.Layers()
	wantLayers, _ := img.Layers()
	for i := range layers {
		got, _ := layers[i].Digest()
		want, _ := wantLayers[i].Digest()
		if got != want {
			t.Errorf("layer %d: %s, want %s", i, got, want)
		}
	}
}

func TestExportErrors(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	img := buildImage(t, v1.Config{}, upperLayer(t, "e"))
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"e:1": img}))
	var buf bytes.Buffer
	for _, tc := range []struct {
		format string
		refs   []string
		class  error
	}{
		{"tar", []string{"e:1"}, errdefs.ErrInvalidArgument},
		{FormatOCI, nil, errdefs.ErrInvalidArgument},
		{FormatOCI, []string{"nope:1"}, errdefs.ErrNotFound},
	} {
		if err := s.Export(&buf, tc.format, tc.refs...); !errors.Is(err, tc.class) {
			t.Errorf("Export(%q, %v) = %v, want %v", tc.format, tc.refs, err, tc.class)
		}
	}

	// A record from before the store kept blobs: the image runs, but
	// cannot be exported.
	var rec record
	path := s.recordPath(imageID(t, img))
	if err := atomicfile.ReadJSON(path, &rec); err != nil {
		t.Fatal(err)
	}
	rec.Manifest, rec.Blobs = "", nil
	if err := atomicfile.WriteJSON(path, rec); err != nil {
		t.Fatal(err)
	}
	old, err := Open(s.root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Get("e:1"); err != nil {
		t.Fatal(err)
	}
	if err := old.Export(&buf, FormatDocker, "e:1"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Export of an old record: %v", err)
	}
	if _, err := old.ConfigFile("e:1"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("ConfigFile of an old record: %v", err)
	}
}

// Blobs are reference-counted like layers.
func TestRemoveAndPruneBlobs(t *testing.T) {
	requiresRoot(t)
	s := openStore(t)
	base := baseLayer(t)
	a := buildImage(t, v1.Config{Cmd: []string{"a"}}, base, upperLayer(t, "a"))
	b := buildImage(t, v1.Config{Cmd: []string{"b"}}, base, upperLayer(t, "b"))
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"a:1": a, "b:1": b}))
	_, aLayers := blobDigests(t, a)
	bCfg, bLayers := blobDigests(t, b)
	has := func(d string) bool { return exists(s.blobPath(d)) }
	if !has(aLayers[0]) || !has(aLayers[1]) || !has(bCfg) {
		t.Fatalf("blobs after import: %v", dirNames(t, s.blobsDir()))
	}
	if cf, err := s.ConfigFile("b:1"); err != nil || digestOf(cf) != bCfg {
		t.Errorf("ConfigFile(b:1) = %s, %v", digestOf(cf), err)
	}

	if err := s.Remove("a:1", nil); err != nil {
		t.Fatal(err)
	}
	if has(aLayers[1]) || has(imageID(t, a)) || !has(aLayers[0]) || !has(bLayers[1]) {
		t.Errorf("after removing a: blobs %v; want a's own gone, the shared base and b's kept", dirNames(t, s.blobsDir()))
	}
	if err := s.Prune(nil); err != nil {
		t.Fatal(err)
	}
	if !has(aLayers[0]) || !has(bCfg) {
		t.Error("Prune deleted blobs of a listed image")
	}
	// Unreferenced blobs (left by a crash) go at the next Prune.
	stray := s.blobPath("sha256:" + sha256Hex([]byte("stray")))
	if err := os.WriteFile(stray, []byte("stray"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Prune(nil); err != nil || exists(stray) {
		t.Errorf("Prune left a stray blob: %v", err)
	}
	if err := s.Remove("b:1", nil); err != nil {
		t.Fatal(err)
	}
	assertNoLeftovers(t, s)
}
