package server

import (
	"context"
	"errors"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/image"
)

// ListImages lists the stored images, optionally only the one a filter names.
func (s *Service) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	resp := &runtimeapi.ListImagesResponse{}
	if ref := req.GetFilter().GetImage().GetImage(); ref != "" {
		img, err := s.images.Get(ref)
		if errors.Is(err, errdefs.ErrNotFound) {
			return resp, nil
		}
		if err != nil {
			return nil, err
		}
		resp.Images = append(resp.Images, criImage(img))
		return resp, nil
	}
	for _, img := range s.images.List() {
		resp.Images = append(resp.Images, criImage(img))
	}
	return resp, nil
}

// ImageStatus describes one image; an absent image is a nil Image, not an
// error, as the CRI says.
func (s *Service) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.InvalidArgument("image.image is required")
	}
	img, err := s.images.Get(ref)
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ImageStatusResponse{Image: criImage(img)}, nil
}

// RemoveImage removes an image by ID, tag or digest. Containers using it
// keep their layers until they are removed. Removing an absent image is
// success.
func (s *Service) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.InvalidArgument("image.image is required")
	}
	err := s.images.Remove(ref, s.layersInUse())
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return nil, err
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo reports the image store's disk usage.
func (s *Service) ImageFsInfo(ctx context.Context, req *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	mountpoint, used, inodes, err := s.images.FsInfo()
	if err != nil {
		return nil, err
	}
	usage := &runtimeapi.FilesystemUsage{
		Timestamp:  time.Now().UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: mountpoint},
		UsedBytes:  &runtimeapi.UInt64Value{Value: used},
		InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{usage}}, nil
}

// PullImage is not there yet: images come in through berthctl images import.
func (s *Service) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	return nil, errdefs.Unimplemented("PullImage %q: pulling from registries is not implemented yet; import the image with 'berthctl images import FILE'", req.GetImage().GetImage())
}

func criImage(img image.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id:          img.ID,
		RepoTags:    img.RepoTags,
		RepoDigests: img.RepoDigests,
		Size:        img.Size,
		Pinned:      img.Pinned,
		Spec:        &runtimeapi.ImageSpec{Image: img.ID},
	}
	if user := img.Config.User; user != "" {
		out.Username = user
	}
	return out
}
