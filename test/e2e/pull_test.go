package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/testutil"
)

// The pull tests run berthd against a docker-registry of their own on
// 127.0.0.1, configured through --registry-config:
//
//	registries:
//	  "127.0.0.1:5000": {insecure: true}          # plain HTTP allowed
//	  "127.0.0.1:5001": {caFiles: [/path/ca.pem]}  # or skipVerify: true
//	  "docker.io": {mirrors: ["http://127.0.0.1:5000"]}

// startRegistry starts a registry for one test and removes it afterwards.
func startRegistry(t *testing.T, opts harness.RegistryOptions) *harness.Registry {
	t.Helper()
	r, err := harness.StartRegistry(context.Background(), opts)
	t.Cleanup(func() {
		if t.Failed() && r != nil {
			if log, err := os.ReadFile(r.LogPath()); err == nil {
				t.Logf("registry log:\n%s", testutil.Tail(string(log), 30))
			}
		}
		if err := r.Cleanup(); err != nil {
			t.Errorf("registry cleanup: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// newPullEnv is newEnv with berthd reading registries as its registry
// configuration ("" for none).
func newPullEnv(t *testing.T, registries string) *env {
	t.Helper()
	e := newEnv(t)
	if registries == "" {
		return e
	}
	e.d.Stop()
	if err := e.d.SetRegistryConfig(registries); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Start(context.Background()); err != nil {
		t.Fatalf("berthd --registry-config %s:\n%s\n%v", e.d.RegistryConfigPath(), registries, err)
	}
	e.rt, e.im = e.d.Runtime, e.d.Images
	return e
}

// insecureRegistries is a registry configuration allowing plain HTTP to
// the hosts.
func insecureRegistries(hosts ...string) string {
	var b strings.Builder
	b.WriteString("registries:\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "  %q:\n    insecure: true\n", h)
	}
	return b.String()
}

// marked is a test image carrying mark (see harness.MarkedImage).
type marked struct {
	mark  string
	img   v1.Image
	id    string // image ID: the config digest
	layer string // digest of its own (top) layer blob
}

func markedImage(t *testing.T, mark string, layers ...v1.Layer) marked {
	t.Helper()
	img, err := harness.MarkedImage(mark, layers...)
	if err != nil {
		t.Fatal(err)
	}
	id, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	all, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	top, err := all[len(all)-1].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return marked{mark: mark, img: img, id: id.String(), layer: top.String()}
}

// push uploads img as path and returns its manifest digest.
func push(t *testing.T, r *harness.Registry, path string, img v1.Image) string {
	t.Helper()
	d, err := r.Push(context.Background(), path, img)
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// pull is PullImage as kubelet sends it; it returns the image ref.
func (e *env) pull(ref string, auth *runtimeapi.AuthConfig) (string, error) {
	resp, err := e.im.PullImage(ctx(e.t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}, Auth: auth})
	return resp.GetImageRef(), err
}

func (e *env) mustPull(ref string, auth *runtimeapi.AuthConfig) string {
	e.t.Helper()
	id, err := e.pull(ref, auth)
	if err != nil {
		e.t.Fatalf("PullImage %s: %v", ref, err)
	}
	return id
}

// imageStatus is the image ref names, nil when berthd has none.
func (e *env) imageStatus(ref string) *runtimeapi.Image {
	e.t.Helper()
	resp, err := e.im.ImageStatus(ctx(e.t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		e.t.Fatalf("ImageStatus %s: %v", ref, err)
	}
	return resp.GetImage()
}

// checkPulled checks that the pull of ref returned the image ID wantID and
// that ImageStatus (by ref) and ListImages show that image with the given
// tags and digests among its names.
func (e *env) checkPulled(ref, gotID, wantID string, tags, digests []string) {
	e.t.Helper()
	if gotID != wantID {
		e.t.Errorf("PullImage %s returned image ref %q, want the image ID %s", ref, gotID, wantID)
	}
	img := e.imageStatus(ref)
	if img == nil {
		e.t.Fatalf("ImageStatus %s after pulling it: no image", ref)
	}
	if img.GetId() != wantID {
		e.t.Errorf("ImageStatus %s: ID %s, want %s", ref, img.GetId(), wantID)
	}
	for _, tag := range tags {
		if !slices.Contains(img.GetRepoTags(), tag) {
			e.t.Errorf("ImageStatus %s: RepoTags %v lack %s", ref, img.GetRepoTags(), tag)
		}
	}
	for _, d := range digests {
		if !slices.Contains(img.GetRepoDigests(), d) {
			e.t.Errorf("ImageStatus %s: RepoDigests %v lack %s", ref, img.GetRepoDigests(), d)
		}
	}
	if img.GetSize() == 0 {
		e.t.Errorf("ImageStatus %s: size 0", ref)
	}
	list, err := e.im.ListImages(ctx(e.t), &runtimeapi.ListImagesRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	if !slices.ContainsFunc(list.GetImages(), func(i *runtimeapi.Image) bool { return i.GetId() == wantID }) {
		e.t.Errorf("ListImages lacks %s (pulled as %s)", wantID, ref)
	}
}

// runMarked runs a container from ref and checks that it has the image's
// files and environment.
func (e *env) runMarked(ref, mark string) {
	e.t.Helper()
	pod := e.podConfig("pulled", withHostNetwork())
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"}, withImage(ref)))
	if out, stderr, code := e.exec(id, "cat", harness.MarkFile); out != mark+"\n" || code != 0 {
		e.t.Errorf("container from %s: cat %s = %q, %q, exit %d; want %q", ref, harness.MarkFile, out, stderr, code, mark)
	}
	if out, _, _ := e.exec(id, "sh", "-c", "echo $MARK"); out != mark+"\n" {
		e.t.Errorf("container from %s: MARK=%q, want %q from the image config", ref, out, mark)
	}
	e.removePod(podID)
}

// wantPullError checks that err has one of the codes and mentions every
// one of names (a registry, a reference) in its message.
func wantPullError(t *testing.T, what string, err error, want []codes.Code, names ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: pull succeeded, want an error", what)
		return
	}
	st, _ := status.FromError(err)
	if !slices.Contains(want, st.Code()) {
		t.Errorf("%s: code %s (%q), want one of %v", what, st.Code(), st.Message(), want)
	}
	for _, n := range names {
		if !strings.Contains(st.Message(), n) {
			t.Errorf("%s: message %q does not name %s", what, st.Message(), n)
		}
	}
	t.Logf("%s: %s: %s", what, st.Code(), st.Message())
}

// TestRegistryHarness checks the test registry itself, with
// go-containerregistry as the client: plain HTTP, TLS with basic auth, and
// the counting proxy.
func TestRegistryHarness(t *testing.T) {
	c := ctx(t)
	a, b := markedImage(t, "a"), markedImage(t, "b")

	plain := startRegistry(t, harness.RegistryOptions{})
	digest := push(t, plain, "e2e/a:1", a.img)
	push(t, plain, "e2e/a:2", a.img)
	push(t, plain, "e2e/b:1", b.img)
	repos, err := plain.Repositories(c)
	if err != nil || !slices.Equal(repos, []string{"e2e/a", "e2e/b"}) {
		t.Errorf("catalog = %v, %v; want e2e/a and e2e/b", repos, err)
	}
	tags, err := plain.Tags(c, "e2e/a")
	slices.Sort(tags)
	if err != nil || !slices.Equal(tags, []string{"1", "2"}) {
		t.Errorf("tags of e2e/a = %v, %v; want 1 and 2", tags, err)
	}
	if got, err := plain.Digest(c, "e2e/a:1"); err != nil || got.String() != digest {
		t.Errorf("digest of e2e/a:1 = %v, %v; want %s", got, err, digest)
	}

	secure := startRegistry(t, harness.RegistryOptions{TLS: true, Username: "berth", Password: "s3cret"})
	push(t, secure, "e2e/a:1", a.img)
	if tags, err := secure.Tags(c, "e2e/a"); err != nil || !slices.Equal(tags, []string{"1"}) {
		t.Errorf("TLS registry: tags of e2e/a = %v, %v", tags, err)
	}
	repo, err := name.NewRepository(secure.Ref("e2e/a"))
	if err != nil {
		t.Fatal(err)
	}
	var terr *transport.Error
	if _, err := remote.List(repo, remote.WithContext(c), remote.WithTransport(secure.Transport())); !errors.As(err, &terr) || terr.StatusCode != 401 {
		t.Errorf("TLS registry without credentials: %v, want HTTP 401", err)
	}
	if !strings.HasPrefix(secure.URL(), "https://") || secure.CAFile == "" {
		t.Errorf("TLS registry: URL %s, CA file %q", secure.URL(), secure.CAFile)
	}

	// The busybox layer is one blob in every marked image and in the
	// imported e2e image: TestPullSharesLayers relies on it.
	imported, err := harness.BusyboxImage(v1.Config{Cmd: []string{"sh"}})
	if err != nil {
		t.Fatal(err)
	}
	var base []v1.Hash
	for _, img := range []v1.Image{imported, a.img, b.img} {
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		d, err := layers[0].Digest()
		if err != nil {
			t.Fatal(err)
		}
		base = append(base, d)
	}
	if base[0] != base[1] || base[0] != base[2] || a.layer == b.layer {
		t.Errorf("busybox layers %v (want all equal), top layers %s, %s (want different)", base, a.layer, b.layer)
	}
	da := base[0]

	proxy, err := plain.StartCountingProxy()
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ref, err := name.ParseReference(proxy.Host+"/e2e/b:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithContext(c))
	if err != nil {
		t.Fatal(err)
	}
	h, err := v1.NewHash(b.layer)
	if err != nil {
		t.Fatal(err)
	}
	top, err := img.LayerByDigest(h)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := top.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if gets := proxy.BlobGets(); gets[b.layer] != 1 || gets[da.String()] != 0 {
		t.Errorf("proxy counted %v; want one GET of %s and none of the base layer", gets, b.layer)
	}
}

// TestPullByTagInsecureRegistry pulls by tag over plain HTTP from a
// registry configured as insecure and runs the image.
func TestPullByTagInsecureRegistry(t *testing.T) {
	r := startRegistry(t, harness.RegistryOptions{})
	app := markedImage(t, "tagged")
	digest := push(t, r, "e2e/tagged:1", app.img)
	e := newPullEnv(t, insecureRegistries(r.Host))

	ref := r.Ref("e2e/tagged:1")
	e.checkPulled(ref, e.mustPull(ref, nil), app.id, []string{ref}, []string{r.Ref("e2e/tagged@" + digest)})
	// Pulling again is fine and changes nothing.
	if id := e.mustPull(ref, nil); id != app.id {
		t.Errorf("second pull of %s returned %s, want %s", ref, id, app.id)
	}
	e.runMarked(ref, "tagged")
}

// TestPullByDigest pulls name@sha256:… and runs the image by that name.
func TestPullByDigest(t *testing.T) {
	r := startRegistry(t, harness.RegistryOptions{})
	app := markedImage(t, "bydigest")
	push(t, r, "e2e/bydigest:1", app.img)
	digest, err := r.Digest(context.Background(), "e2e/bydigest:1")
	if err != nil {
		t.Fatal(err)
	}
	e := newPullEnv(t, insecureRegistries(r.Host))

	ref := r.Ref("e2e/bydigest@" + digest.String())
	e.checkPulled(ref, e.mustPull(ref, nil), app.id, nil, []string{ref})
	e.runMarked(ref, "bydigest")
}

// TestPullMultiPlatformIndex pulls a tag naming a manifest list: berthd
// picks this machine's platform, the image runs, and RepoDigests name the
// list's digest.
func TestPullMultiPlatformIndex(t *testing.T) {
	r := startRegistry(t, harness.RegistryOptions{})
	native := markedImage(t, "native")
	idx, err := harness.MultiPlatformIndex(native.img)
	if err != nil {
		t.Fatal(err)
	}
	idxDigest, err := r.PushIndex(context.Background(), "e2e/multi:1", idx)
	if err != nil {
		t.Fatal(err)
	}
	e := newPullEnv(t, insecureRegistries(r.Host))

	ref := r.Ref("e2e/multi:1")
	e.checkPulled(ref, e.mustPull(ref, nil), native.id, []string{ref}, []string{r.Ref("e2e/multi@" + idxDigest.String())})
	unpinned := 0
	for _, img := range e.imageList() {
		if !img.GetPinned() {
			unpinned++
		}
	}
	if unpinned != 2 {
		t.Errorf("%d unpinned images after pulling a two-platform index, want 2 (busybox, native): only the native image is stored", unpinned)
	}
	e.runMarked(ref, "native")
}

func (e *env) imageList() []*runtimeapi.Image {
	e.t.Helper()
	list, err := e.im.ListImages(ctx(e.t), &runtimeapi.ListImagesRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	return list.GetImages()
}

// TestPullTLSBasicAuth pulls over HTTPS (the registry's CA in caFiles)
// with basic auth: the credentials in the request work, missing or wrong
// ones fail with a code saying so and a message naming the registry.
func TestPullTLSBasicAuth(t *testing.T) {
	r := startRegistry(t, harness.RegistryOptions{TLS: true, Username: "berth", Password: "s3cret"})
	app := markedImage(t, "private")
	digest := push(t, r, "e2e/private:1", app.img)
	e := newPullEnv(t, fmt.Sprintf("registries:\n  %q:\n    caFiles: [%q]\n", r.Host, r.CAFile))

	ref := r.Ref("e2e/private:1")
	denied := []codes.Code{codes.PermissionDenied, codes.Unauthenticated}
	_, err := e.pull(ref, nil)
	wantPullError(t, "no credentials", err, denied, r.Host)
	_, err = e.pull(ref, &runtimeapi.AuthConfig{Username: "berth", Password: "wrong"})
	wantPullError(t, "wrong password", err, denied, r.Host)
	if img := e.imageStatus(ref); img != nil {
		t.Errorf("failed pulls stored %v", img)
	}

	id := e.mustPull(ref, &runtimeapi.AuthConfig{Username: "berth", Password: "s3cret"})
	e.checkPulled(ref, id, app.id, []string{ref}, []string{r.Ref("e2e/private@" + digest)})
	e.runMarked(ref, "private")
}

// TestPullThroughMirror pulls a docker.io image that only a configured
// mirror has: the image keeps its docker.io names.
func TestPullThroughMirror(t *testing.T) {
	r := startRegistry(t, harness.RegistryOptions{})
	app := markedImage(t, "mirrored")
	digest := push(t, r, "library/berth-e2e-mirrored:1", app.img)
	e := newPullEnv(t, insecureRegistries(r.Host)+
		fmt.Sprintf("  \"docker.io\":\n    mirrors: [%q]\n", r.URL()))

	ref := "docker.io/library/berth-e2e-mirrored:1"
	id := e.mustPull(ref, nil)
	e.checkPulled(ref, id, app.id, []string{ref}, []string{"docker.io/library/berth-e2e-mirrored@" + digest})
	img := e.imageStatus("berth-e2e-mirrored:1")
	if img.GetId() != app.id {
		t.Errorf("ImageStatus by the short name: %v, want %s", img, app.id)
	}
	for _, n := range append(img.GetRepoTags(), img.GetRepoDigests()...) {
		if strings.Contains(n, r.Host) {
			t.Errorf("image names %v mention the mirror %s; they name docker.io only", img.GetRepoTags(), r.Host)
		}
	}
	e.runMarked("berth-e2e-mirrored:1", "mirrored")
}

// TestPullPlainHTTPNeedsInsecure: a registry that speaks only plain HTTP
// and is not configured insecure is refused, with a message naming it.
func TestPullPlainHTTPNeedsInsecure(t *testing.T) {
	r := startRegistry(t, harness.RegistryOptions{})
	app := markedImage(t, "plain")
	push(t, r, "e2e/plain:1", app.img)
	other, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	e := newPullEnv(t, insecureRegistries(other))

	ref := r.Ref("e2e/plain:1")
	_, err = e.pull(ref, nil)
	anyButUnknown := []codes.Code{codes.Unavailable, codes.FailedPrecondition, codes.InvalidArgument, codes.PermissionDenied}
	wantPullError(t, "plain HTTP registry not marked insecure", err, anyButUnknown, r.Host)
	if img := e.imageStatus(ref); img != nil {
		t.Errorf("refused pull stored %v", img)
	}
}

// TestPullAbsent: a tag or repository the registry lacks is NotFound,
// naming the reference.
func TestPullAbsent(t *testing.T) {
	r := startRegistry(t, harness.RegistryOptions{})
	push(t, r, "e2e/present:1", markedImage(t, "present").img)
	e := newPullEnv(t, insecureRegistries(r.Host))

	for _, path := range []string{"e2e/present:nope", "e2e/absent:1"} {
		ref := r.Ref(path)
		_, err := e.pull(ref, nil)
		wantPullError(t, ref, err, []codes.Code{codes.NotFound}, ref)
	}
}

// TestPullConcurrent: pulls of one image at once all succeed with one
// image as the result.
func TestPullConcurrent(t *testing.T) {
	r := startRegistry(t, harness.RegistryOptions{})
	app := markedImage(t, "concurrent")
	push(t, r, "e2e/concurrent:1", app.img)
	e := newPullEnv(t, insecureRegistries(r.Host))

	ref := r.Ref("e2e/concurrent:1")
	const n = 6
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ids[i], errs[i] = e.pull(ref, nil) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != app.id {
			t.Errorf("concurrent pull %d: %q, %v; want %s", i, ids[i], errs[i], app.id)
		}
	}
	tagged := 0
	for _, img := range e.imageList() {
		if slices.Contains(img.GetRepoTags(), ref) {
			tagged++
		}
	}
	if tagged != 1 {
		t.Errorf("%d images tagged %s after concurrent pulls, want 1", tagged, ref)
	}
	e.runMarked(ref, "concurrent")
}

// TestPullSharesLayers: a pull downloads only the layers the node lacks.
// Two images share a base layer: the second pull fetches only its own top
// layer and config. Neither pull fetches the busybox layer, which the node
// has from the image newEnv imported.
func TestPullSharesLayers(t *testing.T) {
	r := startRegistry(t, harness.RegistryOptions{})
	shared, err := harness.FileLayer("/etc/berth-shared", []byte("a base layer two images share\n"))
	if err != nil {
		t.Fatal(err)
	}
	first, second := markedImage(t, "first", shared), markedImage(t, "second", shared)
	push(t, r, "e2e/first:1", first.img)
	push(t, r, "e2e/second:1", second.img)
	layers, err := first.img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	busyboxLayer, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	sharedLayer, err := shared.Digest()
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := r.StartCountingProxy()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	e := newPullEnv(t, insecureRegistries(r.Host, proxy.Host))

	e.mustPull(proxy.Host+"/e2e/first:1", nil)
	before := proxy.BlobGets()
	if before[sharedLayer.String()] == 0 || before[first.layer] == 0 {
		t.Fatalf("first pull fetched %v; want the shared layer %s and the top layer %s", before, sharedLayer, first.layer)
	}
	if n := before[busyboxLayer.String()]; n != 0 {
		t.Errorf("first pull fetched the busybox layer %s %d time(s), which the node had from an import", busyboxLayer, n)
	}
	ref := proxy.Host + "/e2e/second:1"
	e.checkPulled(ref, e.mustPull(ref, nil), second.id, []string{ref}, nil)
	after := proxy.BlobGets()
	secondConfig, err := second.img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	for blob, n := range after {
		if n != before[blob] && blob != second.layer && blob != secondConfig.String() {
			t.Errorf("second pull fetched blob %s %d time(s); it needed only its layer %s and config %s (shared layer %s, busybox layer %s)",
				blob, n-before[blob], second.layer, secondConfig, sharedLayer, busyboxLayer)
		}
	}
	if after[second.layer] == before[second.layer] {
		t.Errorf("second pull did not fetch its own layer %s through the proxy: %v", second.layer, after)
	}
	e.runMarked(ref, "second")
}

// TestPullOfflineNode: with no registry at all and no registry
// configuration, an imported image runs, and a pull from an unreachable
// registry fails as Unavailable, naming it.
func TestPullOfflineNode(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("offline", withHostNetwork())
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"}))
	if out, _, code := e.exec(id, "echo", "offline"); out != "offline\n" || code != 0 {
		t.Errorf("container from the imported image: %q, exit %d", out, code)
	}

	gone, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.pull(gone+"/e2e/x:1", nil)
	wantPullError(t, "unreachable registry", err, []codes.Code{codes.Unavailable}, gone)
	if img := e.imageStatus(busybox); img == nil {
		t.Errorf("imported %s gone after a failed pull", busybox)
	}
	if st := e.status(id); st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container %s after a failed pull: %s", id, st.GetState())
	}
	e.removePod(podID)
}
