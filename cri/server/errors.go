package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berth-project/berth/cri/errdefs"
)

// toGRPC maps a classified error to its gRPC status. This is the only
// place that knows about gRPC codes.
func toGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, errdefs.ErrAlreadyExists):
		code = codes.AlreadyExists
	case errors.Is(err, errdefs.ErrInvalidArgument):
		code = codes.InvalidArgument
	case errors.Is(err, errdefs.ErrFailedPrecondition):
		code = codes.FailedPrecondition
	case errors.Is(err, errdefs.ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, errdefs.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, errdefs.ErrUnimplemented):
		code = codes.Unimplemented
	case errors.Is(err, errdefs.ErrPermissionDenied):
		code = codes.PermissionDenied
	default:
		// Anything else failed inside berth or below it (runc, CNI, the
		// kernel): Internal, never Unknown.
		code = codes.Internal
	}
	return status.Error(code, err.Error())
}

// readOnly are the verbs logged at debug level; mutating ones at info.
func readOnly(method string) bool {
	name := method[strings.LastIndexByte(method, '/')+1:]
	for _, p := range []string{"List", "Status", "Stats", "Version", "ImageFsInfo", "RuntimeConfig"} {
		if strings.HasPrefix(name, p) || strings.HasSuffix(name, p) {
			return true
		}
	}
	return false
}

// Interceptor logs each call and maps its error to a gRPC status.
func Interceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		level := slog.LevelInfo
		if readOnly(info.FullMethod) {
			level = slog.LevelDebug
		}
		if err != nil {
			err = toGRPC(err)
			if status.Code(err) == codes.Internal {
				level = slog.LevelError
			}
			log.Log(ctx, level, "cri call failed", "method", info.FullMethod, "duration", time.Since(start), "error", err)
			return nil, err
		}
		log.Log(ctx, level, "cri call", "method", info.FullMethod, "duration", time.Since(start))
		return resp, nil
	}
}
