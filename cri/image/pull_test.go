package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-project/berth/cri/errdefs"

	"github.com/berth-project/berth/test/testutil"
)

// blobDigests are the digests of an image's config and layer blobs.
func blobDigests(t *testing.T, img v1.Image) (config string, layers []string) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		layers = append(layers, l.Digest.String())
	}
	return m.Config.Digest.String(), layers
}

func TestPullByTag(t *testing.T) {
	requiresRoot(t)
	r := newTestRegistry(t)
	img := buildImage(t, testConfig, baseLayer(t), upperLayer(t, "tag"))
	digest := r.push("team/app:1", img)
	s := insecureStore(t, r)

	got := mustPull(t, s, r.ref("team/app:1"), nil)
	if got.ID != imageID(t, img) || !slices.Equal(got.DiffIDs, diffIDs(t, img)) {
		t.Errorf("Pull = ID %s diff IDs %v; want %s %v", got.ID, got.DiffIDs, imageID(t, img), diffIDs(t, img))
	}
	if want := []string{r.ref("team/app:1")}; !slices.Equal(got.RepoTags, want) {
		t.Errorf("RepoTags = %v, want %v", got.RepoTags, want)
	}
	if want := []string{r.ref("team/app@" + digest)}; !slices.Equal(got.RepoDigests, want) {
		t.Errorf("RepoDigests = %v, want %v", got.RepoDigests, want)
	}
	if got.Size == 0 || got.Config.User != testConfig.User {
		t.Errorf("Size %d, Config %+v", got.Size, got.Config)
	}
	dirs, err := s.LayerDirs(r.ref("team/app:1"))
	if err != nil || len(dirs) != 2 {
		t.Fatalf("LayerDirs = %v, %v", dirs, err)
	}
	checkBaseLayer(t, dirs[0])
	checkUpperLayer(t, dirs[1])

	// The blobs are kept as the registry served them.
	rawConfig, _ := img.RawConfigFile()
	if cf, err := s.ConfigFile(r.ref("team/app:1")); err != nil || !bytes.Equal(cf, rawConfig) {
		t.Errorf("ConfigFile = %q, %v; want the config blob", cf, err)
	}
	cfgDigest, layerDigests := blobDigests(t, img)
	want := append([]string{strings.TrimPrefix(digest, "sha256:"), strings.TrimPrefix(cfgDigest, "sha256:")}, trimAll(layerDigests)...)
	slices.Sort(want)
	if got := dirNames(t, s.blobsDir()); !slices.Equal(got, want) {
		t.Errorf("blobs/ = %v, want %v (manifest, config, layers)", got, want)
	}
	if n := dirNames(t, s.tmpDir()); len(n) != 0 {
		t.Errorf("tmp/ holds %v after a pull", n)
	}

	// Pulling again fetches the manifest only.
	r.counts()
	if again := mustPull(t, s, r.ref("team/app:1"), nil); again.ID != got.ID {
		t.Errorf("second pull = %s", again.ID)
	}
	if blobs, manifests := r.counts(); len(blobs) != 0 || manifests != 1 {
		t.Errorf("second pull fetched blobs %v and %d manifests; want no blob", blobs, manifests)
	}
}

func trimAll(digests []string) []string {
	out := make([]string, len(digests))
	for i, d := range digests {
		out[i] = strings.TrimPrefix(d, "sha256:")
	}
	return out
}

func TestPullByDigest(t *testing.T) {
	requiresRoot(t)
	r := newTestRegistry(t)
	img := buildImage(t, v1.Config{Cmd: []string{"digest"}}, upperLayer(t, "d"))
	digest := r.push("team/app:1", img)
	s := insecureStore(t, r)

	ref := r.ref("team/app@" + digest)
	got := mustPull(t, s, ref, nil)
	if got.ID != imageID(t, img) || len(got.RepoTags) != 0 || !slices.Equal(got.RepoDigests, []string{ref}) {
		t.Errorf("Pull(%s) = %+v", ref, got)
	}
	// With a tag and a digest, the digest wins: the tag need not exist.
	if got := mustPull(t, s, r.ref("team/app:nosuchtag@"+digest), nil); got.ID != imageID(t, img) || len(got.RepoTags) != 0 {
		t.Errorf("Pull(name:tag@digest) = %+v", got)
	}
	if _, err := s.Get(ref); err != nil {
		t.Errorf("Get(%s): %v", ref, err)
	}
}

// An index whose first entry is for another platform: the pull takes this
// machine's entry, stores only it, and records the index digest.
func TestPullMultiPlatformIndex(t *testing.T) {
	requiresRoot(t)
	for _, mt := range []types.MediaType{types.OCIImageIndex, types.DockerManifestList} {
		t.Run(string(mt), func(t *testing.T) {
			r := newTestRegistry(t)
			native := buildImage(t, v1.Config{Cmd: []string{"native"}}, upperLayer(t, "native"))
			foreign := buildImage(t, v1.Config{Cmd: []string{"foreign"}}, upperLayer(t, "foreign"))
			idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, mt),
				mutate.IndexAddendum{Add: foreign, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}},
				mutate.IndexAddendum{Add: native, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}}},
			)
			idxDigest := r.pushIndex("team/multi:1", idx)
			s := insecureStore(t, r)

			got := mustPull(t, s, r.ref("team/multi:1"), nil)
			if got.ID != imageID(t, native) {
				t.Fatalf("Pull = %s, want the native image %s", got.ID, imageID(t, native))
			}
			if want := []string{r.ref("team/multi@" + idxDigest)}; !slices.Equal(got.RepoDigests, want) {
				t.Errorf("RepoDigests = %v, want the index digest %v", got.RepoDigests, want)
			}
			if n := len(s.List()); n != 1 {
				t.Errorf("%d images stored, want only the native one", n)
			}
			foreignConfig, _ := blobDigests(t, foreign)
			blobs, _ := r.counts()
			if blobs[foreignConfig] != 0 {
				t.Errorf("the other platform's config was fetched")
			}
			if !slices.Contains(dirNames(t, s.blobsDir()), strings.TrimPrefix(idxDigest, "sha256:")) {
				t.Error("the index blob is not kept")
			}
		})
	}
}

func TestPullIndexWithoutThisPlatform(t *testing.T) {
	r := newTestRegistry(t)
	foreign := buildImage(t, v1.Config{}, static.NewLayer([]byte("x"), types.OCIUncompressedLayer))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: foreign, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}})
	r.pushIndex("team/foreign:1", idx)
	s := insecureStore(t, r)
	_, err := s.Pull(pullCtx(t), r.ref("team/foreign:1"), nil)
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), runtime.GOARCH) {
		t.Errorf("err = %v, want NotFound naming this platform", err)
	}
	assertNoLeftovers(t, s)
}

// Layers come gzip-compressed, zstd-compressed or uncompressed.
func TestPullLayerCompressions(t *testing.T) {
	requiresRoot(t)
	r := newTestRegistry(t)
	gz := layerOf(t, file("gz", "gz\n"))
	zstdTar := tarBytes(t, file("zstd", "zstd\n"))
	zst, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(zstdTar)), nil
	}, tarball.WithCompression(compression.ZStd))
	if err != nil {
		t.Fatal(err)
	}
	plain := static.NewLayer(tarBytes(t, file("plain", "plain\n")), types.OCIUncompressedLayer)
	img := buildImage(t, v1.Config{}, gz, zst, plain)
	r.push("team/layers:1", img)
	s := insecureStore(t, r)

	got := mustPull(t, s, r.ref("team/layers:1"), nil)
	dirs, err := s.LayerDirs(got.ID)
	if err != nil || len(dirs) != 3 {
		t.Fatalf("LayerDirs = %v, %v", dirs, err)
	}
	for i, name := range []string{"gz", "zstd", "plain"} {
		if b, err := os.ReadFile(filepath.Join(dirs[i], name)); err != nil || string(b) != name+"\n" {
			t.Errorf("layer %d: %s = %q, %v", i, name, b, err)
		}
	}
}

// A second image sharing a base layer downloads only its own layer.
func TestPullSharedLayerDownloadedOnce(t *testing.T) {
	requiresRoot(t)
	r := newTestRegistry(t)
	base := baseLayer(t)
	a := buildImage(t, v1.Config{Cmd: []string{"a"}}, base, upperLayer(t, "a"))
	b := buildImage(t, v1.Config{Cmd: []string{"b"}}, base, upperLayer(t, "b"))
	r.push("team/a:1", a)
	r.push("team/b:1", b)
	s := insecureStore(t, r)
	_, aLayers := blobDigests(t, a)
	bConfig, bLayers := blobDigests(t, b)

	mustPull(t, s, r.ref("team/a:1"), nil)
	if blobs, _ := r.counts(); blobs[aLayers[0]] != 1 || blobs[aLayers[1]] != 1 {
		t.Errorf("first pull fetched %v", blobs)
	}
	mustPull(t, s, r.ref("team/b:1"), nil)
	blobs, _ := r.counts()
	if want := map[string]int{bConfig: 1, bLayers[1]: 1}; !mapsEqual(blobs, want) {
		t.Errorf("second pull fetched %v, want only %v (its config and own layer)", blobs, want)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Two pulls of one reference share the work; the first caller giving up
// does not fail the second.
func TestConcurrentPullsShareTheWork(t *testing.T) {
	requiresRoot(t)
	g := newGate()
	r := newTestRegistry(t, withMiddleware(g.middleware))
	img := buildImage(t, v1.Config{}, baseLayer(t), upperLayer(t, "c"))
	r.push("team/c:1", img)
	s := insecureStore(t, r)
	ref := r.ref("team/c:1")

	ctx1, cancel1 := context.WithCancel(pullCtx(t))
	errs1 := make(chan error, 1)
	go func() { _, err := s.Pull(ctx1, ref, nil); errs1 <- err }()
	<-g.arrived // the first pull is fetching blobs
	type result struct {
		img Image
		err error
	}
	res2 := make(chan result, 1)
	go func() { img, err := s.Pull(pullCtx(t), ref, nil); res2 <- result{img, err} }()
	testutil.Eventually(t, "the second pull to join the first", func() bool { return s.pulls.waiting(ref) == 2 })

	cancel1()
	if err := <-errs1; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: err = %v, want context.Canceled", err)
	}
	close(g.open)
	got := <-res2
	if got.err != nil || got.img.ID != imageID(t, img) {
		t.Fatalf("second caller: %+v, %v", got.img.ID, got.err)
	}
	blobs, manifests := r.counts()
	if manifests != 1 {
		t.Errorf("%d manifest GETs, want 1", manifests)
	}
	cfg, layers := blobDigests(t, img)
	for _, d := range append(layers, cfg) {
		if blobs[d] != 1 {
			t.Errorf("blob %s fetched %d times, want once", d, blobs[d])
		}
	}
}

// A pull cancelled half-way through a blob leaves nothing behind, and the
// next pull succeeds.
func TestCancelledPullLeavesNothing(t *testing.T) {
	requiresRoot(t)
	img := buildImage(t, v1.Config{}, baseLayer(t), upperLayer(t, "slow"))
	_, layers := blobDigests(t, img)
	st := newStall(layers[1])
	r := newTestRegistry(t, withMiddleware(st.middleware))
	r.push("team/slow:1", img)
	s := insecureStore(t, r)
	ref := r.ref("team/slow:1")

	ctx, cancel := context.WithCancel(pullCtx(t))
	errs := make(chan error, 1)
	go func() { _, err := s.Pull(ctx, ref, nil); errs <- err }()
	<-st.stalled
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertNoLeftovers(t, s)
	if _, err := s.Get(ref); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get after a cancelled pull: %v", err)
	}

	st.disable()
	if got := mustPull(t, s, ref, nil); got.ID != imageID(t, img) {
		t.Errorf("pull after the cancelled one = %s", got.ID)
	}
}

func TestPullCorruptBlob(t *testing.T) {
	requiresRoot(t)
	img := buildImage(t, v1.Config{}, baseLayer(t), upperLayer(t, "corrupt"))
	_, layers := blobDigests(t, img)
	r := newTestRegistry(t, withMiddleware(corruptBlobs(layers[1])))
	r.push("team/corrupt:1", img)
	s := insecureStore(t, r)

	_, err := s.Pull(pullCtx(t), r.ref("team/corrupt:1"), nil)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("err = %v, want FailedPrecondition", err)
	}
	for _, want := range []string{"digest mismatch", layers[1], r.host, "team/corrupt:1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want it to mention %q", err, want)
		}
	}
	assertNoLeftovers(t, s)
}

func TestPullNotFound(t *testing.T) {
	img := buildImage(t, v1.Config{}, static.NewLayer(tarBytes(t, file("f", "x")), types.OCIUncompressedLayer))
	_, layers := blobDigests(t, img)
	missing := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if d, ok := blobDigest(req); ok && d == layers[0] && req.Method == http.MethodGet {
				http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}`, http.StatusNotFound)
				return
			}
			next.ServeHTTP(w, req)
		})
	}
	r := newTestRegistry(t, withMiddleware(missing))
	r.push("team/app:1", img)
	s := insecureStore(t, r)

	for ref, want := range map[string]string{
		r.ref("team/app:2"):     "team/app:2",
		r.ref("team/nothing:1"): "team/nothing:1",
		r.ref("team/app:1"):     layers[0], // the manifest is there, a layer is not
		r.ref("team/app@sha256:" + strings.Repeat("0", 64)): strings.Repeat("0", 64),
	} {
		_, err := s.Pull(pullCtx(t), ref, nil)
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Pull(%s): err = %v, want NotFound", ref, err)
			continue
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), r.host) {
			t.Errorf("Pull(%s): err = %q, want it to name %s and the registry", ref, err, want)
		}
	}
	assertNoLeftovers(t, s)
}

func TestPullRejectsBadInput(t *testing.T) {
	s := openStore(t)
	if _, err := s.Pull(pullCtx(t), "Bad Ref", nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad ref: %v", err)
	}
	if _, err := s.Pull(pullCtx(t), "busybox", &Auth{Auth: "not base64!"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad auth: %v", err)
	}
}

// A layer the store has unpacked from another source — here an archive
// that shipped it uncompressed — is not downloaded by a pull that names
// it compressed: the diff ID decides. The image runs, but cannot be
// exported without that blob.
func TestPullSkipsLayerUnpackedFromAnotherSource(t *testing.T) {
	requiresRoot(t)
	content := tarBytes(t, file("shared", "shared\n"))
	uncompressed := static.NewLayer(content, types.OCIUncompressedLayer)
	gzipped, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil })
	if err != nil {
		t.Fatal(err)
	}
	local := buildImage(t, v1.Config{Cmd: []string{"local"}}, uncompressed)
	pulled := buildImage(t, v1.Config{Cmd: []string{"pulled"}}, gzipped, upperLayer(t, "top"))
	r := newTestRegistry(t)
	r.push("team/pulled:1", pulled)
	s := insecureStore(t, r)
	mustImport(t, s, writeDockerArchive(t, map[string]v1.Image{"local:1": local}))

	got := mustPull(t, s, r.ref("team/pulled:1"), nil)
	_, layers := blobDigests(t, pulled)
	if blobs, _ := r.counts(); blobs[layers[0]] != 0 || blobs[layers[1]] != 1 {
		t.Errorf("pull fetched %v; want only the top layer %s, not the shared one %s", blobs, layers[1], layers[0])
	}
	if dirs, err := s.LayerDirs(got.ID); err != nil || len(dirs) != 2 {
		t.Errorf("LayerDirs = %v, %v", dirs, err)
	}
	err = s.Export(io.Discard, FormatOCI, got.ID)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), layers[0]) {
		t.Errorf("Export = %v, want FailedPrecondition naming the missing blob", err)
	}
	if err := s.Export(io.Discard, FormatOCI, "local:1"); err != nil {
		t.Errorf("Export(local:1) = %v", err)
	}
}

func TestMediaTypeOf(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		sent types.MediaType
		want types.MediaType
	}{
		{`{}`, types.DockerManifestSchema2, types.DockerManifestSchema2},
		{`{"mediaType":"application/vnd.oci.image.index.v1+json"}`, "application/json", types.OCIImageIndex},
		{`{"schemaVersion":2,"manifests":[]}`, "", types.OCIImageIndex},
		{`{"schemaVersion":2,"config":{},"layers":[]}`, "text/plain", types.OCIManifestSchema1},
		{`not json`, "text/plain", "text/plain"},
	} {
		if got := mediaTypeOf([]byte(tc.raw), tc.sent); got != tc.want {
			t.Errorf("mediaTypeOf(%s, %q) = %q, want %q", tc.raw, tc.sent, got, tc.want)
		}
	}
}

// The names a pull records, for the forms users write.
func TestPullNormalisesReferences(t *testing.T) {
	r := newTestRegistry(t)
	img := smallImage(t, "names")
	digest := r.push("team/app:latest", img)
	for _, tc := range []struct {
		ref           string
		tags, digests []string
	}{
		{r.ref("team/app"), []string{r.ref("team/app:latest")}, []string{r.ref("team/app@" + digest)}},
		{r.ref("team/app:latest"), []string{r.ref("team/app:latest")}, []string{r.ref("team/app@" + digest)}},
		{r.ref("team/app@" + digest), nil, []string{r.ref("team/app@" + digest)}},
		{r.ref("team/app:gone@" + digest), nil, []string{r.ref("team/app@" + digest)}},
	} {
		fresh := insecureStore(t, r)
		got, err := fresh.Pull(pullCtx(t), tc.ref, nil)
		if err != nil {
			t.Errorf("Pull(%s): %v", tc.ref, err)
			continue
		}
		if !slices.Equal(got.RepoTags, tc.tags) || !slices.Equal(got.RepoDigests, tc.digests) {
			t.Errorf("Pull(%s) names %v %v, want %v %v", tc.ref, got.RepoTags, got.RepoDigests, tc.tags, tc.digests)
		}
		if byRef, err := fresh.Get(tc.ref); err != nil || byRef.ID != got.ID {
			t.Errorf("Get(%s) after pulling it: %v", tc.ref, err)
		}
	}
}
