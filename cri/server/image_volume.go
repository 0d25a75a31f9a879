package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/image"
	"github.com/berth-project/berth/cri/store"
)

// Image volumes (CRI mounts with image set, KEP-4639): each image is
// mounted read-only at <container dir>/imagevols/<mount index>/rootfs, an
// overlay of its layers without an upper layer, and that directory (or its
// sub path) is bound read-only into the container. The mounts are found by
// that naming when undone, so an interrupted creation is cleaned up without
// a record.
const imageVolsName = "imagevols"

// validateImageMount checks what can be checked of mounts[i], a mount with
// image set, without the image store.
func validateImageMount(i int, m *runtimeapi.Mount) error {
	field := fmt.Sprintf("config.mounts[%d]", i)
	switch {
	case m.GetImage().GetImage() == "":
		return errdefs.InvalidArgument("%s.image.image is required", field)
	case m.GetHostPath() != "":
		return errdefs.InvalidArgument("%s: host_path and image are exclusive", field)
	case !m.GetReadonly():
		return errdefs.InvalidArgument("%s.readonly is false: image volumes are read-only", field)
	}
	if sub := m.GetImageSubPath(); filepath.IsAbs(sub) || slices.Contains(strings.Split(sub, "/"), "..") {
		return errdefs.InvalidArgument("%s.image_sub_path %q must be relative and stay inside the image", field, sub)
	}
	return nil
}

// imageVolumeImages looks up the image of each mount with image set, by
// mount index. The image must be present: kubelet pulls it first.
func (s *Service) imageVolumeImages(mounts []*runtimeapi.Mount) (map[int]image.Image, error) {
	imgs := map[int]image.Image{}
	for i, m := range mounts {
		if m.GetImage() == nil {
			continue
		}
		if err := validateImageMount(i, m); err != nil {
			return nil, err
		}
		ref := m.GetImage().GetImage()
		img, err := s.images.Get(ref)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, errdefs.NotFound("config.mounts[%d].image: image %q is not present on this node: pull it first", i, ref)
		}
		if err != nil {
			return nil, fmt.Errorf("config.mounts[%d].image: %w", i, err)
		}
		imgs[i] = img
	}
	return imgs, nil
}

// mountImageVolumes mounts the images of imgs (by mount index) read-only
// under dir/imagevols and returns their records and, by mount index, the
// host path to bind: the mounted image or its sub path, resolved inside it
// (symlinks cannot lead out of the image). On error the caller undoes what
// was mounted with unmountImageVolumes(dir).
func (s *Service) mountImageVolumes(dir string, mounts []*runtimeapi.Mount, imgs map[int]image.Image) ([]store.ImageVolume, map[int]string, error) {
	if len(imgs) == 0 {
		return nil, nil, nil
	}
	if err := mkdirTraversable(filepath.Join(dir, imageVolsName)); err != nil {
		return nil, nil, fmt.Errorf("image volumes: %w", err)
	}
	var vols []store.ImageVolume
	sources := map[int]string{}
	for i, m := range mounts {
		img, ok := imgs[i]
		if !ok {
			continue
		}
		vdir := filepath.Join(dir, imageVolsName, strconv.Itoa(i))
		root, err := s.images.MountReadOnly(img.ID, vdir)
		if err != nil {
			return nil, nil, fmt.Errorf("config.mounts[%d].image %q: %w", i, m.GetImage().GetImage(), err)
		}
		src := root
		if sub := m.GetImageSubPath(); sub != "" {
			if src, err = securejoin.SecureJoin(root, sub); err != nil {
				return nil, nil, errdefs.InvalidArgument("config.mounts[%d].image_sub_path %q: %v", i, sub, err)
			}
			if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
				return nil, nil, errdefs.NotFound("config.mounts[%d].image_sub_path %q does not exist in image %q",
					i, sub, m.GetImage().GetImage())
			} else if err != nil {
				return nil, nil, fmt.Errorf("config.mounts[%d].image_sub_path %q: %w", i, sub, err)
			}
		}
		sources[i] = src
		vols = append(vols, store.ImageVolume{
			Mount: i, ContainerPath: m.GetContainerPath(), ImageID: img.ID,
			DiffIDs: slices.Clone(img.DiffIDs), Dir: vdir,
		})
	}
	return vols, sources, nil
}

// unmountImageVolumes unmounts every image volume of the container in dir
// and removes their directories. It is idempotent; on error it leaves the
// directories, so that nothing is deleted through a mount.
func unmountImageVolumes(dir string) error {
	root := filepath.Join(dir, imageVolsName)
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unmount image volumes: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if err := image.UnmountRootfs(filepath.Join(root, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("unmount image volumes: %w", errors.Join(errs...))
	}
	return os.RemoveAll(root)
}

// criMountsStatus is the container's mounts as ContainerStatus reports
// them: as requested, with each image volume's image_ref set to the ID of
// the image mounted.
func criMountsStatus(mounts []*runtimeapi.Mount, vols []store.ImageVolume) []*runtimeapi.Mount {
	if len(vols) == 0 {
		return mounts
	}
	out := slices.Clone(mounts)
	for _, v := range vols {
		if v.Mount < 0 || v.Mount >= len(out) || out[v.Mount].GetImage() == nil {
			continue
		}
		m := proto.Clone(out[v.Mount]).(*runtimeapi.Mount)
		m.Image.ImageRef = v.ImageID
		out[v.Mount] = m
	}
	return out
}
