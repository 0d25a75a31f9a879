package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
)

// ImportMethod is berth's own RPC, served next to the CRI on the same
// socket, through which berthctl has the daemon import an image archive:
// the daemon stays the image store's only writer. The request names an
// archive on the node by absolute path; the answer lists what came in.
const ImportMethod = "/berth.v1.Images/Import"

// ExportMethod has berthd write images to an archive on the node: the
// request is a Struct {"path": absolute path, "format": "docker"|"oci",
// "refs": [image references]}.
const ExportMethod = "/berth.v1.Images/Export"

// RegisterAdmin adds berth's own services to srv.
func RegisterAdmin(srv *grpc.Server, s *Service) {
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "berth.v1.Images",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "Import", Handler: unary(ImportMethod, func(s *Service, ctx context.Context, in *wrapperspb.StringValue) (any, error) {
				return s.importImages(ctx, in.GetValue())
			})},
			{MethodName: "Export", Handler: unary(ExportMethod, func(s *Service, ctx context.Context, in *structpb.Struct) (any, error) {
				return s.exportImages(ctx, in)
			})},
		},
	}, s)
}

// unary adapts a typed handler to grpc.MethodDesc, through the interceptor.
func unary[T proto.Message](method string, h func(*Service, context.Context, T) (any, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
		var zero T
		in := zero.ProtoReflect().New().Interface().(T)
		if err := dec(in); err != nil {
			return nil, err
		}
		call := func(ctx context.Context, req any) (any, error) { return h(srv.(*Service), ctx, req.(T)) }
		if icpt == nil {
			return call(ctx, in)
		}
		return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, call)
	}
}

func (s *Service) exportImages(ctx context.Context, req *structpb.Struct) (*wrapperspb.StringValue, error) {
	fields := req.GetFields()
	path := fields["path"].GetStringValue()
	format := fields["format"].GetStringValue()
	if !filepath.IsAbs(path) {
		return nil, errdefs.InvalidArgument("export: path %q must be absolute", path)
	}
	if format != "docker" && format != "oci" {
		return nil, errdefs.InvalidArgument("export: format %q must be docker or oci", format)
	}
	var refs []string
	for _, v := range fields["refs"].GetListValue().GetValues() {
		refs = append(refs, v.GetStringValue())
	}
	if len(refs) == 0 {
		return nil, errdefs.InvalidArgument("export: name at least one image")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, errdefs.InvalidArgument("export: %v", err)
	}
	err = s.images.Export(f, format, refs...)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("export to %s: %w", path, err)
	}
	s.log.Info("images exported", "refs", refs, "to", path, "format", format)
	return wrapperspb.String(path), nil
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
