package imagegc

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// image is what a decision needs of a CRI image.
type image struct {
	id      string
	tags    []string
	digests []string
	size    uint64
	pinned  bool
}

// imagesFromCRI converts a ListImages answer, dropping images without an
// ID and repeated IDs (so that no image is planned twice).
func imagesFromCRI(in []*runtimeapi.Image) []image {
	out := make([]image, 0, len(in))
	seen := map[string]bool{}
	for _, i := range in {
		if i.GetId() == "" || seen[i.GetId()] {
			continue
		}
		seen[i.GetId()] = true
		out = append(out, image{id: i.GetId(), tags: i.GetRepoTags(), digests: i.GetRepoDigests(), size: i.GetSize(), pinned: i.GetPinned()})
	}
	return out
}

// names are every normalised name image answers to.
func (i image) names() []string {
	out := make([]string, 0, 1+len(i.tags)+len(i.digests))
	out = append(out, normalize(i.id))
	for _, t := range i.tags {
		out = append(out, normalize(t))
	}
	for _, d := range i.digests {
		out = append(out, normalize(d))
	}
	return out
}

// inUse is the set of normalised image names that containers refer to.
type inUse map[string]bool

// inUseBy collects the names that containers, of any state, refer to:
// their image_ref and image_id (the image's ID, or a repo digest with
// containerd) and the image they asked for (a tag, digest or ID).
func inUseBy(ctrs []*runtimeapi.Container) inUse {
	u := inUse{}
	for _, c := range ctrs {
		for _, ref := range []string{c.GetImageRef(), c.GetImageId(), c.GetImage().GetImage()} {
			if ref != "" {
				u[normalize(ref)] = true
			}
		}
	}
	return u
}

// uses reports whether any container refers to img by any of its names.
func (u inUse) uses(img image) bool {
	for _, n := range img.names() {
		if u[n] {
			return true
		}
	}
	return false
}

// normalize makes equal references to the same thing equal strings:
// "busybox", "docker.io/library/busybox:latest" and
// "index.docker.io/library/busybox:latest" all become one string; a
// reference with both tag and digest keeps the digest; a bare 64-digit
// hex ID gains "sha256:". What does not parse is kept as it is.
func normalize(ref string) string {
	if hex := strings.TrimPrefix(ref, "sha256:"); isHex64(hex) {
		return "sha256:" + hex
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return ref
	}
	base := r.Context().RegistryStr() + "/" + r.Context().RepositoryStr()
	if d, ok := r.(name.Digest); ok {
		return base + "@" + d.DigestStr()
	}
	return base + ":" + r.Identifier()
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
