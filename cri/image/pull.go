package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-project/berth/cri/errdefs"
)

const userAgent = "berth"

// Pull fetches the image ref names and stores it, returning the stored
// image (a copy). ref is any form NormalizeRef accepts ("busybox",
// "registry.k8s.io/pause:3.10", "name@sha256:…"; with both a tag and a
// digest the digest wins). A reference naming an index (a multi-platform
// image) stores this machine's image from it.
//
// The configured mirrors of the reference's registry are tried in order,
// then the registry itself (see RegistryConfig); the image keeps the
// reference's own names whichever endpoint served it: RepoTags holds the
// tag, RepoDigests "<repository>@<digest of the manifest or index the
// reference resolved to>". Blobs the store holds are not fetched again, so
// pulling an image that shares layers with a stored one fetches only its
// config, manifests and new layers. Every blob is verified against its
// digest, and every layer against its diff ID, before it is used.
//
// Concurrent pulls of one reference do the work once: later callers wait
// for the first and get its result. A caller whose ctx ends gets ctx's
// error; the pull goes on for the others and is cancelled when no caller
// waits any more. A pull that fails or is cancelled leaves nothing behind:
// no image, no blob, no layer, no temporary file.
//
// Errors name the reference, the endpoint and the step that failed:
// errdefs.ErrNotFound (no such manifest, blob or platform image),
// errdefs.ErrPermissionDenied (the registry answered 401 or 403),
// errdefs.ErrFailedPrecondition (content that does not match its digest —
// the message says "digest mismatch" and names the blob —, plain HTTP to a
// registry not configured insecure, an untrusted certificate),
// errdefs.ErrUnavailable (unreachable, or failing with 5xx),
// errdefs.ErrUnimplemented (Docker schema 1), errdefs.ErrInvalidArgument
// (a malformed ref or auth). When every endpoint fails, the error lists
// each one with its reason and takes the registry's class.
func (s *Store) Pull(ctx context.Context, ref string, auth *Auth) (Image, error) {
	norm, err := NormalizeRef(ref)
	if err != nil {
		return Image{}, err
	}
	if _, err := auth.config(); err != nil {
		return Image{}, err
	}
	return s.pulls.do(ctx, norm, func(ctx context.Context) (Image, error) {
		return s.pull(ctx, norm, auth)
	})
}

// pull tries each endpoint in turn.
func (s *Store) pull(ctx context.Context, norm string, auth *Auth) (Image, error) {
	eps, err := s.registries.Load().endpoints(norm)
	if err != nil {
		return Image{}, err
	}
	var failures []error
	for _, ep := range eps {
		img, err := s.pullFrom(ctx, ep, norm, auth)
		if err == nil {
			return img, nil
		}
		if ctx.Err() != nil {
			return Image{}, fmt.Errorf("pull %s from %s: %w", norm, ep.label, ctx.Err())
		}
		err = fmt.Errorf("%s: %w", ep.label, err)
		failures = append(failures, err)
		if len(failures) < len(eps) {
			s.log.Debug("image pull: endpoint failed, trying the next", "ref", norm, "err", err)
		}
	}
	last := failures[len(failures)-1]
	if len(failures) == 1 {
		return Image{}, fmt.Errorf("pull %s from %w", norm, last)
	}
	var tried []string
	for _, f := range failures[:len(failures)-1] {
		tried = append(tried, f.Error())
	}
	return Image{}, fmt.Errorf("pull %s: all %d endpoints failed: %s; %w", norm, len(failures), strings.Join(tried, "; "), last)
}

// pullFrom pulls norm from one endpoint: it resolves the reference to a
// manifest (through indexes, picking this platform), then stores the
// config, the layers and the manifests.
func (s *Store) pullFrom(ctx context.Context, ep endpoint, norm string, auth *Auth) (Image, error) {
	a, err := auth.authenticator(ep.host)
	if err != nil {
		return Image{}, err
	}
	puller, err := remote.NewPuller(remote.WithTransport(ep.transport), remote.WithAuth(a), remote.WithUserAgent(userAgent))
	if err != nil {
		return Image{}, err
	}
	desc, err := puller.Get(ctx, ep.ref)
	if err != nil {
		return Image{}, remoteError("fetch manifest "+repoPath(ep.ref), err)
	}
	resolved := desc.Digest.String()
	if err := checkManifestDigest(repoPath(ep.ref), desc.Manifest, resolved); err != nil {
		return Image{}, err
	}
	if d, ok := ep.ref.(name.Digest); ok && d.DigestStr() != resolved {
		return Image{}, errdefs.FailedPrecondition("fetch manifest: digest mismatch: the registry served %s for %s", resolved, d.DigestStr())
	}
	raw, mt, indexes, err := resolvePlatform(ctx, puller, ep.ref.Context(), desc.Manifest, mediaTypeOf(desc.Manifest, desc.MediaType), resolved)
	if err != nil {
		return Image{}, err
	}
	if err := checkManifestType(mt); err != nil {
		return Image{}, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return Image{}, errdefs.FailedPrecondition("manifest: %v", err)
	}
	img, err := s.storePulled(ctx, puller, ep.ref.Context(), norm, resolved, raw, m, indexes)
	if err != nil && errors.Is(err, errdefs.ErrInvalidArgument) {
		// Bad content from a registry is not a bad request: cut the
		// class off, keep the message.
		err = errdefs.FailedPrecondition("%v", err)
	}
	return img, err
}

// resolvePlatform follows indexes down to this platform's manifest,
// returning it with its media type and the raw indexes passed through.
func resolvePlatform(ctx context.Context, puller *remote.Puller, repo name.Repository, raw []byte, mt types.MediaType, digest string) ([]byte, types.MediaType, [][]byte, error) {
	var indexes [][]byte
	host := hostPlatform()
	for depth := 0; mt.IsIndex(); depth++ {
		if depth >= maxIndexDepth {
			return nil, "", nil, errdefs.FailedPrecondition("index %s: indexes nested more than %d deep", digest, maxIndexDepth)
		}
		im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, "", nil, errdefs.FailedPrecondition("index %s: %v", digest, err)
		}
		child, ok := host.pick(im.Manifests)
		if !ok {
			return nil, "", nil, errdefs.NotFound("index %s has no image for %s", digest, host)
		}
		indexes = append(indexes, raw)
		digest = child.Digest.String()
		desc, err := puller.Get(ctx, repo.Digest(digest))
		if err != nil {
			return nil, "", nil, remoteError("fetch manifest "+digest+" for "+host.String(), err)
		}
		if err := checkManifestDigest(digest, desc.Manifest, digest); err != nil {
			return nil, "", nil, err
		}
		raw, mt = desc.Manifest, mediaTypeOf(desc.Manifest, desc.MediaType)
	}
	return raw, mt, indexes, nil
}

// mediaTypeOf is a manifest's media type: the one the registry sent, or,
// when that names no manifest type (a registry answering
// application/json), the one the manifest gives or its shape implies.
func mediaTypeOf(raw []byte, sent types.MediaType) types.MediaType {
	if sent.IsIndex() || sent.IsImage() || sent.IsSchema1() {
		return sent
	}
	var probe struct {
		MediaType types.MediaType  `json:"mediaType"`
		Manifests *json.RawMessage `json:"manifests"`
		Config    *json.RawMessage `json:"config"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return sent
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return types.OCIImageIndex
	case probe.Config != nil:
		return types.OCIManifestSchema1
	}
	return sent
}

func checkManifestDigest(what string, raw []byte, want string) error {
	if got := digestOf(raw); got != want {
		return errdefs.FailedPrecondition("manifest %s: digest mismatch: the content has digest %s, want %s", what, got, want)
	}
	return nil
}

func checkManifestType(mt types.MediaType) error {
	switch mt {
	case types.DockerManifestSchema2, types.OCIManifestSchema1:
		return nil
	case types.DockerManifestSchema1, types.DockerManifestSchema1Signed:
		return errdefs.Unimplemented("the image has a Docker schema 1 manifest, which is not supported: push it again with a current client")
	default:
		return errdefs.FailedPrecondition("unsupported manifest media type %q", mt)
	}
}

// storePulled stores the image a manifest describes: the config first, whose
// diff IDs say which layers the store already has, then the layers it
// lacks, then the manifest and the indexes.
func (s *Store) storePulled(ctx context.Context, puller *remote.Puller, repo name.Repository, norm, resolved string, raw []byte, m *v1.Manifest, indexes [][]byte) (Image, error) {
	what := "image " + norm
	w := s.begin(what)
	defer w.close()
	cfgDigest := m.Config.Digest.String()
	cfgBlob := blobSource{
		digest: cfgDigest, size: m.Config.Size, mediaType: m.Config.MediaType, what: "config " + cfgDigest,
		open: remoteBlob(puller, repo, cfgDigest, "fetch config "+cfgDigest),
	}
	if _, _, err := w.ensureBlob(ctx, cfgBlob); err != nil {
		return Image{}, err
	}
	configRaw, err := s.readBlob(cfgDigest)
	if err != nil {
		return Image{}, err
	}
	layers := make([]layerSource, len(m.Layers))
	for i, d := range m.Layers {
		digest := d.Digest.String()
		layers[i] = layerSource{blob: blobSource{
			digest: digest, size: d.Size, mediaType: d.MediaType, what: "layer " + digest,
			open: remoteBlob(puller, repo, digest, "fetch layer "+digest), remote: true,
		}}
	}
	src, err := newSource(what, configRaw, layers)
	if err != nil {
		return Image{}, errdefs.FailedPrecondition("%v", err)
	}
	src.manifest, src.configWant, src.indexes = raw, cfgDigest, indexes
	if strings.Contains(norm, "@") {
		src.addNames(nil, []string{norm})
	} else {
		src.addNames([]string{norm}, []string{repoOf(norm) + "@" + resolved})
	}
	s.warnPlatform(src, what)
	if err := w.storeSource(ctx, src); err != nil {
		return Image{}, err
	}
	imgs, err := w.commit([]*source{src})
	if err != nil {
		return Image{}, err
	}
	return imgs[0], nil
}

// remoteBlob opens a blob of repo through the puller, with its errors
// classified and saying which step failed.
func remoteBlob(puller *remote.Puller, repo name.Repository, digest, step string) func(context.Context) (io.ReadCloser, error) {
	return classifiedOpen(func(ctx context.Context) (io.ReadCloser, error) {
		l, err := puller.Layer(ctx, repo.Digest(digest))
		if err != nil {
			return nil, err
		}
		return l.Compressed()
	}, func(err error) error { return remoteError(step, err) })
}

// repoPath is a reference without its registry ("team/app:1",
// "team/app@sha256:…"): the endpoint's label names the registry.
func repoPath(ref name.Reference) string {
	sep := ":"
	if _, ok := ref.(name.Digest); ok {
		sep = "@"
	}
	return ref.Context().RepositoryStr() + sep + ref.Identifier()
}
