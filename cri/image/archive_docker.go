package image

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// readDockerArchive reads the images a `docker save` archive lists in its
// manifest.json (go-containerregistry's tarball.Descriptor). Such archives
// carry no manifest digest, so their images get tags but no RepoDigests.
func readDockerArchive(dir, what string) ([]*source, error) {
	var manifest tarball.Manifest
	if err := readJSONFile(filepath.Join(dir, "manifest.json"), &manifest); err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	var srcs []*source
	for i, entry := range manifest {
		imgWhat := fmt.Sprintf("%s: manifest.json entry %d", what, i)
		src, err := dockerSource(dir, imgWhat, entry)
		if err != nil {
			return nil, err
		}
		for _, tag := range entry.RepoTags {
			norm, err := NormalizeRef(tag)
			if err != nil {
				return nil, fmt.Errorf("%s: RepoTags: %v", imgWhat, err)
			}
			src.addNames([]string{norm}, nil)
		}
		srcs = append(srcs, src)
	}
	return srcs, nil
}

func dockerSource(dir, what string, entry tarball.Descriptor) (*source, error) {
	if entry.Config == "" {
		return nil, fmt.Errorf("%s: no Config", what)
	}
	cfgPath, err := securejoin.SecureJoin(dir, entry.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: config %q: %v", what, entry.Config, err)
	}
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("%s: config %q is missing from the archive", what, entry.Config)
	}
	layers := make([]layerSource, len(entry.Layers))
	for i, name := range entry.Layers {
		p, err := securejoin.SecureJoin(dir, name)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %q: %v", what, name, err)
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: layer %q is missing from the archive", what, name)
		}
		l, err := partial.CompressedToLayer(&fileBlob{path: p, size: fi.Size()})
		if err != nil {
			return nil, fmt.Errorf("%s: layer %q: %v", what, name, err)
		}
		layers[i] = layerSource{size: fi.Size(), open: l.Uncompressed}
	}
	return newSource(what, raw, layers)
}

// fileBlob is a layer blob stored as a file, compressed (gzip, zstd) or
// not; go-containerregistry's partial package detects which and
// decompresses it.
type fileBlob struct {
	path string
	size int64
}

var _ partial.CompressedLayer = (*fileBlob)(nil)

// Digest hashes the file. Unpacking never needs it (it verifies diff IDs),
// so it is computed only on demand.
func (b *fileBlob) Digest() (v1.Hash, error) {
	f, err := os.Open(b.path)
	if err != nil {
		return v1.Hash{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}, nil
}

func (b *fileBlob) Compressed() (io.ReadCloser, error) { return os.Open(b.path) }

func (b *fileBlob) Size() (int64, error) { return b.size, nil }

func (b *fileBlob) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }
