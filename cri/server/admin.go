package server

import (
	"context"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
)

// ImportMethod is berth's own RPC, served next to the CRI on the same
// socket, through which berthctl has the daemon import an image archive:
// the daemon stays the image store's only writer. The request names an
// archive on the node by absolute path; the answer lists what came in.
const ImportMethod = "/berth.v1.Images/Import"

// RegisterAdmin adds berth's own services to srv.
func RegisterAdmin(srv *grpc.Server, s *Service) {
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "berth.v1.Images",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Import",
			Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
				in := new(wrapperspb.StringValue)
				if err := dec(in); err != nil {
					return nil, err
				}
				call := func(ctx context.Context, req any) (any, error) {
					return srv.(*Service).importImages(ctx, req.(*wrapperspb.StringValue).GetValue())
				}
				if icpt == nil {
					return call(ctx, in)
				}
				return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: ImportMethod}, call)
			},
		}},
	}, s)
}

func (s *Service) importImages(ctx context.Context, path string) (*runtimeapi.ListImagesResponse, error) {
	if !filepath.IsAbs(path) {
		return nil, errdefs.InvalidArgument("import: path %q must be absolute", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, errdefs.InvalidArgument("import: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errdefs.InvalidArgument("import: %s is not a regular file", path)
	}
	imgs, err := s.images.Import(path)
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ListImagesResponse{}
	for _, img := range imgs {
		resp.Images = append(resp.Images, criImage(img))
		s.log.Info("image imported", "image", img.ID, "tags", img.RepoTags, "from", path)
	}
	return resp, nil
}
