package server

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
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
	resp := &runtimeapi.ImageStatusResponse{Image: criImage(img)}
	if req.GetVerbose() {
		info := map[string]any{"id": img.ID, "repoTags": img.RepoTags, "repoDigests": img.RepoDigests, "pinned": img.Pinned}
		if cfg, err := s.images.ConfigFile(img.ID); err == nil {
			info["imageSpec"] = json.RawMessage(cfg)
		}
		data, _ := json.Marshal(info)
		resp.Info = map[string]string{"info": string(data)}
	}
	return resp, nil
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

// PullImage fetches an image from its registry (or a configured mirror)
// with the request's credentials, and returns its ID.
func (s *Service) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.InvalidArgument("image.image is required")
	}
	var auth *image.Auth
	if a := req.GetAuth(); a != nil {
		auth = &image.Auth{
			Username:      a.GetUsername(),
			Password:      a.GetPassword(),
			Auth:          a.GetAuth(),
			ServerAddress: a.GetServerAddress(),
			IdentityToken: a.GetIdentityToken(),
			RegistryToken: a.GetRegistryToken(),
		}
	}
	img, err := s.images.Pull(ctx, ref, auth)
	if err != nil {
		return nil, err
	}
	s.log.Info("image pulled", "ref", ref, "image", img.ID)
	return &runtimeapi.PullImageResponse{ImageRef: img.ID}, nil
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
	// The CRI wants a numeric user as uid and a named one as username.
	user, _, _ := strings.Cut(img.Config.User, ":")
	if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
		out.Uid = &runtimeapi.Int64Value{Value: uid}
	} else {
		out.Username = user
	}
	return out
}
