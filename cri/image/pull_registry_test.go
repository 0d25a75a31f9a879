package image

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-project/berth/cri/errdefs"
)

// smallImage is a one-layer image that needs no root to unpack.
func smallImage(t *testing.T, mark string) v1.Image {
	t.Helper()
	return buildImage(t, v1.Config{Cmd: []string{mark}},
		static.NewLayer(tarBytes(t, file("mark", mark)), types.OCIUncompressedLayer))
}

func storeWith(t *testing.T, cfg RegistryConfig) *Store {
	t.Helper()
	s := openStore(t)
	if err := s.SetRegistries(cfg); err != nil {
		t.Fatal(err)
	}
	return s
}

func wantPullError(t *testing.T, err error, class error, mentions ...string) {
	t.Helper()
	t.Logf("pull error: %v", err)
	if !errors.Is(err, class) {
		t.Errorf("err = %v, want class %v", err, class)
		return
	}
	for _, m := range mentions {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("err = %q, want it to mention %q", err, m)
		}
	}
}

func TestPullBasicAuth(t *testing.T) {
	r := newTestRegistry(t, withBasicAuth("berth", "s3cret"))
	img := smallImage(t, "private")
	r.push("team/private:1", img)
	s := insecureStore(t, r)
	ref := r.ref("team/private:1")

	for name, auth := range map[string]*Auth{
		"none":                 nil,
		"wrong password":       {Username: "berth", Password: "wrong"},
		"other server address": {Username: "berth", Password: "s3cret", ServerAddress: "registry.example.com"},
	} {
		_, err := s.Pull(pullCtx(t), ref, auth)
		if !errors.Is(err, errdefs.ErrPermissionDenied) || !strings.Contains(err.Error(), r.host) {
			t.Errorf("%s: err = %v, want PermissionDenied naming %s", name, err, r.host)
		}
	}
	assertNoLeftovers(t, s)

	encoded := base64.StdEncoding.EncodeToString([]byte("berth:s3cret"))
	for name, auth := range map[string]*Auth{
		"user and password": {Username: "berth", Password: "s3cret"},
		"auth field":        {Auth: encoded, ServerAddress: "https://" + r.host + "/v2/"},
	} {
		if got, err := s.Pull(pullCtx(t), ref, auth); err != nil || got.ID != imageID(t, img) {
			t.Errorf("%s: Pull = %s, %v", name, got.ID, err)
		}
	}
}

// Plain HTTP only where the configuration allows it.
func TestPullPlainHTTPNeedsInsecure(t *testing.T) {
	r := newTestRegistry(t)
	img := smallImage(t, "plain")
	r.push("team/plain:1", img)

	s := openStore(t)
	_, err := s.Pull(pullCtx(t), r.ref("team/plain:1"), nil)
	wantPullError(t, err, errdefs.ErrFailedPrecondition, r.host, "plain HTTP", "insecure")
	assertNoLeftovers(t, s)

	// A bare host key covers every port.
	s = storeWith(t, RegistryConfig{Registries: map[string]RegistryHost{"127.0.0.1": {Insecure: true}}})
	if got := mustPull(t, s, r.ref("team/plain:1"), nil); got.ID != imageID(t, img) {
		t.Errorf("Pull = %s", got.ID)
	}
}

func TestPullTLS(t *testing.T) {
	r := newTestRegistry(t, withTLS())
	img := smallImage(t, "tls")
	r.push("team/tls:1", img)
	ref := r.ref("team/tls:1")

	s := openStore(t)
	_, err := s.Pull(pullCtx(t), ref, nil)
	wantPullError(t, err, errdefs.ErrFailedPrecondition, r.host, "certificate", "caFiles")

	for name, host := range map[string]RegistryHost{
		"caFiles":    {CAFiles: []string{r.caFile()}},
		"skipVerify": {SkipVerify: true},
	} {
		s := storeWith(t, RegistryConfig{Registries: map[string]RegistryHost{r.host: host}})
		if got, err := s.Pull(pullCtx(t), ref, nil); err != nil || got.ID != imageID(t, img) {
			t.Errorf("%s: Pull = %s, %v", name, got.ID, err)
		}
	}
}

// The registry is unreachable; its mirror serves the image, which keeps
// the registry's names.
func TestPullThroughMirror(t *testing.T) {
	mirror := newTestRegistry(t)
	img := smallImage(t, "mirrored")
	digest := mirror.push("team/app:1", img)
	prefixed := smallImage(t, "prefixed")
	prefixedDigest := mirror.push("cache/upstream/team/app:2", prefixed)
	hub := smallImage(t, "hub")
	hubDigest := mirror.push("library/busybox:1", hub)
	s := storeWith(t, RegistryConfig{Registries: map[string]RegistryHost{
		"docker.io":                {Mirrors: []string{"http://" + mirror.host}},
		"127.0.0.1:1":              {Mirrors: []string{"http://" + mirror.host}},
		"unreachable.invalid:5000": {Mirrors: []string{"http://" + mirror.host + "/cache/upstream/"}},
	}})

	got := mustPull(t, s, "127.0.0.1:1/team/app:1", nil)
	if got.ID != imageID(t, img) || !slices.Equal(got.RepoTags, []string{"127.0.0.1:1/team/app:1"}) ||
		!slices.Equal(got.RepoDigests, []string{"127.0.0.1:1/team/app@" + digest}) {
		t.Errorf("through the mirror: %+v", got)
	}
	got = mustPull(t, s, "unreachable.invalid:5000/team/app:2", nil)
	if got.ID != imageID(t, prefixed) || !slices.Equal(got.RepoDigests, []string{"unreachable.invalid:5000/team/app@" + prefixedDigest}) {
		t.Errorf("through the prefixed mirror: %+v", got)
	}
	if _, err := s.Get("127.0.0.1:1/team/app:1"); err != nil {
		t.Error(err)
	}
	// Docker Hub's short names map to library/ on the mirror too.
	got = mustPull(t, s, "busybox:1", nil)
	if got.ID != imageID(t, hub) || !slices.Equal(got.RepoTags, []string{"docker.io/library/busybox:1"}) ||
		!slices.Equal(got.RepoDigests, []string{"docker.io/library/busybox@" + hubDigest}) {
		t.Errorf("busybox:1 through the mirror: %+v", got)
	}
}

// A mirror that lacks the image, or serves it corrupt, is passed over for
// the registry.
func TestPullFallsBackFromMirror(t *testing.T) {
	img := smallImage(t, "upstream")
	_, layers := blobDigests(t, img)
	upstream := newTestRegistry(t)
	upstream.push("team/app:1", img)
	empty := newTestRegistry(t)
	corrupt := newTestRegistry(t, withMiddleware(corruptBlobs(layers[0])))
	corrupt.push("team/app:1", img)
	s := storeWith(t, RegistryConfig{Registries: map[string]RegistryHost{
		upstream.host: {Insecure: true, Mirrors: []string{"http://" + empty.host, "http://" + corrupt.host}},
	}})
	if got := mustPull(t, s, upstream.ref("team/app:1"), nil); got.ID != imageID(t, img) {
		t.Errorf("Pull = %s", got.ID)
	}
	if blobs, _ := upstream.counts(); blobs[layers[0]] != 1 {
		t.Errorf("upstream served %v, want the layer the mirror corrupted", blobs)
	}
}

// When every endpoint fails, the error names each with its reason and has
// the registry's class.
func TestPullAllEndpointsFail(t *testing.T) {
	mirror := newTestRegistry(t)
	s := storeWith(t, RegistryConfig{Registries: map[string]RegistryHost{
		"127.0.0.1:1": {Mirrors: []string{"http://" + mirror.host}},
	}})
	_, err := s.Pull(pullCtx(t), "127.0.0.1:1/team/app:1", nil)
	wantPullError(t, err, errdefs.ErrUnavailable,
		"127.0.0.1:1/team/app:1", "mirror http://"+mirror.host, "not found", "registry 127.0.0.1:1", "unreachable")
	if errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("err = %v also matches the mirror's class", err)
	}
	assertNoLeftovers(t, s)
}
