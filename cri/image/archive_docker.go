package image

import (
	"fmt"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
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
		layers[i] = fileLayer(fmt.Sprintf("%s: layer %q", what, name), p, fi.Size())
	}
	return newSource(what, raw, layers)
}
