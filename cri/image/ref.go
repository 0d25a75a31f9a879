package image

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/berth-project/berth/cri/errdefs"
)

// minPrefix is the shortest ID prefix Get accepts. Shorter prefixes would
// let a short image name the kubelet asks about ("cafe") match an unrelated
// image by ID and run it; 12 digits is what `docker images` and crictl show.
const minPrefix = 12

// NormalizeRef returns the canonical form of an image reference, the form
// stored in RepoTags and RepoDigests: the registry is explicit ("docker.io",
// never "index.docker.io"), Docker Hub's implicit "library/" namespace is
// added, a missing tag becomes ":latest", and a digest is kept (a reference
// with both a tag and a digest keeps only the digest, which is what
// identifies the content). So "busybox" → "docker.io/library/busybox:latest"
// and "localhost:5000/x" → "localhost:5000/x:latest". A 64-digit hex string
// (with or without "sha256:") is an image ID, not a reference, and is
// rejected. Errors are of class errdefs.ErrInvalidArgument.
func NormalizeRef(ref string) (string, error) {
	if ref == "" {
		return "", errdefs.InvalidArgument("empty image reference")
	}
	if isHex(strings.TrimPrefix(ref, "sha256:"), 64) {
		return "", errdefs.InvalidArgument("%q is an image ID, not an image reference", ref)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", errdefs.InvalidArgument("invalid image reference %q: %v", ref, err)
	}
	registry := r.Context().RegistryStr()
	if registry == name.DefaultRegistry {
		registry = "docker.io"
	}
	base := registry + "/" + r.Context().RepositoryStr()
	norm := base + ":" + r.Identifier()
	if d, ok := r.(name.Digest); ok {
		norm = base + "@" + d.DigestStr()
	}
	// Qualifying can make a name too long ("library/" is added): refuse
	// it now rather than store a name that no later lookup can parse.
	if _, err := name.ParseReference(norm, name.StrictValidation); err != nil {
		return "", errdefs.InvalidArgument("invalid image reference %q: as %s: %v", ref, norm, err)
	}
	return norm, nil
}

// refKind says how a ref matched, which decides what Remove removes.
type refKind int

const (
	byID refKind = iota
	byTag
	byDigest
)

// resolveLocked finds the record ref names; see Get for the accepted forms
// and their order. The caller holds s.mu.
func (s *Store) resolveLocked(ref string) (*record, refKind, error) {
	if ref == "" {
		return nil, 0, errdefs.InvalidArgument("empty image reference")
	}
	hex, explicitID := strings.CutPrefix(ref, "sha256:")
	looksLikeID := isHex(hex, len(hex)) && len(hex) > 0
	if explicitID && !looksLikeID {
		return nil, 0, errdefs.InvalidArgument("invalid image ID %q", ref)
	}
	if looksLikeID && len(hex) == 64 {
		if rec, ok := s.images["sha256:"+hex]; ok {
			return rec, byID, nil
		}
		return nil, 0, notFound(ref)
	}
	var parseErr error
	if !explicitID {
		norm, err := NormalizeRef(ref)
		if err == nil {
			if rec, kind := s.byNameLocked(norm); rec != nil {
				return rec, kind, nil
			}
		}
		parseErr = err
	}
	if looksLikeID && len(hex) >= minPrefix {
		return s.byPrefixLocked(ref, hex)
	}
	if parseErr != nil {
		return nil, 0, parseErr
	}
	return nil, 0, notFound(ref)
}

// byNameLocked finds the image holding a normalised tag or digest reference.
func (s *Store) byNameLocked(norm string) (*record, refKind) {
	digestRef := strings.Contains(norm, "@")
	for _, rec := range s.images {
		names, kind := rec.Image.RepoTags, byTag
		if digestRef {
			names, kind = rec.Image.RepoDigests, byDigest
		}
		for _, n := range names {
			if n == norm {
				return rec, kind
			}
		}
	}
	return nil, 0
}

// byPrefixLocked finds the one image whose ID starts with the hex prefix.
func (s *Store) byPrefixLocked(ref, prefix string) (*record, refKind, error) {
	var found *record
	for id, rec := range s.images {
		if strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), prefix) {
			if found != nil {
				return nil, 0, errdefs.InvalidArgument("image ID prefix %q is ambiguous", ref)
			}
			found = rec
		}
	}
	if found == nil {
		return nil, 0, notFound(ref)
	}
	return found, byID, nil
}

// isHex reports whether s is n lowercase hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validDigest reports whether d is "sha256:" and 64 hex digits, the only
// digest form the store uses for IDs, diff IDs and directory names.
func validDigest(d string) bool {
	hex, ok := strings.CutPrefix(d, "sha256:")
	return ok && isHex(hex, 64)
}
