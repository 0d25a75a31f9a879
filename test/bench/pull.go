package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"
)

// pullBench pulls a multi-layer image of about size bytes from a local
// in-process registry through berth, and the same image with
// go-containerregistry straight to disk plus a plain unpack: the floor.
func pullBench(ctx context.Context, size int64, layers int) error {
	img, err := random.Image(size/int64(layers), int64(layers))
	if err != nil {
		return err
	}
	return withRegistry(ctx, img, "bench/big:1", func(d *harness.Daemon, ref name.Reference) error {
		return pullFigures(ctx, d, ref, size, layers)
	})
}

func pullFigures(ctx context.Context, d *harness.Daemon, ref name.Reference, size int64, layers int) error {
	start := time.Now()
	if _, err := d.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref.String()}}); err != nil {
		return fmt.Errorf("berth pull: %w", err)
	}
	berth := time.Since(start)

	dir, err := os.MkdirTemp("", "pull-floor")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	start = time.Now()
	download, err := ggcrPullToDisk(ref, dir)
	if err != nil {
		return err
	}
	unpackStart := time.Now()
	if err := unpackAll(download, filepath.Join(dir, "rootfs")); err != nil {
		return err
	}
	unpack := time.Since(unpackStart)
	floor := time.Since(start)

	fmt.Printf("image pull (%d MiB, %d layers, local registry)\n", size>>20, layers)
	fmt.Printf("%-34s %9s\n", "berth PullImage", round(berth))
	fmt.Printf("%-34s %9s (download %s + unpack %s)\n", "floor ggcr pull-to-disk + unpack", round(floor), round(floor-unpack), round(unpack))
	fmt.Printf("%-34s %8.2fx; target <= 1.2x\n\n", "ratio berth/floor", ratio(berth, floor))
	return nil
}

// ggcrPullToDisk downloads every compressed layer to a file, verified,
// and returns the files.
func ggcrPullToDisk(ref name.Reference, dir string) ([]string, error) {
	img, err := remote.Image(ref)
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	var files []string
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, fmt.Sprintf("layer-%d.tar.gz", i))
		f, err := os.Create(path)
		if err != nil {
			rc.Close()
			return nil, err
		}
		_, err = io.Copy(f, rc)
		rc.Close()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		files = append(files, path)
	}
	return files, nil
}

// unpackAll extracts the layer files' contents, in order, into dir.
func unpackAll(files []string, dir string) error {
	for _, f := range files {
		l, err := tarball.LayerFromFile(f)
		if err != nil {
			return err
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return err
		}
		err = untar(rc, dir)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.Clean("/"+hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, os.FileMode(hdr.Mode)&0o7777)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}
