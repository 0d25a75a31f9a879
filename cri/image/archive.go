package image

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth-project/berth/cri/errdefs"
)

// An import archive is extracted to a private directory first, whatever
// its format: one sequential pass over the file (go-containerregistry's
// tarball reader rescans the tar for every blob), extraction with the same
// safety rules as layers, and then both formats are read from plain files —
// including Docker ≥ 25 archives, which are an OCI layout and a docker
// archive at once.

var gzipMagic = []byte{0x1f, 0x8b}

// extractArchive extracts the (optionally gzip-compressed) tarball at file
// into dir.
func extractArchive(file, dir string) error {
	what := "archive " + file
	f, err := os.Open(file)
	if err != nil {
		return errdefs.InvalidArgument("%s: %w", what, err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(len(gzipMagic)); bytes.Equal(magic, gzipMagic) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return errdefs.InvalidArgument("%s: bad gzip stream: %w", what, err)
		}
		defer gz.Close()
		r = gz
	}
	return newExtractor(dir, what, false).extract(r)
}

// readArchive returns the images of the archive extracted at dir. file
// names the archive in errors, all of class errdefs.ErrInvalidArgument.
func readArchive(dir, file string) ([]*source, error) {
	what := "archive " + file
	hasLayout := exists(filepath.Join(dir, "oci-layout"))
	hasDocker := exists(filepath.Join(dir, "manifest.json"))
	if !hasLayout && !hasDocker {
		return nil, errdefs.InvalidArgument("%s: neither an OCI image layout (no oci-layout file) "+
			"nor a docker archive (no manifest.json)", what)
	}
	var srcs []*source
	if hasLayout {
		s, err := readOCILayout(dir, what)
		if err != nil {
			return nil, errdefs.InvalidArgument("%w", err)
		}
		srcs = append(srcs, s...)
	}
	if hasDocker {
		s, err := readDockerArchive(dir, what)
		if err != nil {
			return nil, errdefs.InvalidArgument("%w", err)
		}
		srcs = append(srcs, s...)
	}
	srcs = mergeSources(srcs)
	if len(srcs) == 0 {
		return nil, errdefs.InvalidArgument("%s: contains no image", what)
	}
	return srcs, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// readJSONFile reads a small JSON file of the archive.
func readJSONFile(p string, v any) error {
	data, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("missing %s", filepath.Base(p))
		}
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %v", filepath.Base(p), err)
	}
	return nil
}
