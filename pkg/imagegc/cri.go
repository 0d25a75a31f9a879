package imagegc

import (
	"context"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Runtime is what the collector needs of the CRI RuntimeService: every
// container, in any state, to know which images are in use. The
// generated RuntimeServiceClient satisfies it.
type Runtime interface {
	// ListContainers with an empty request lists every container.
	ListContainers(ctx context.Context, in *runtimeapi.ListContainersRequest, opts ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error)
}

// Images is what the collector needs of the CRI ImageService. The
// generated ImageServiceClient satisfies it.
type Images interface {
	// ListImages with an empty request lists every image.
	ListImages(ctx context.Context, in *runtimeapi.ListImagesRequest, opts ...grpc.CallOption) (*runtimeapi.ListImagesResponse, error)
	// ImageFsInfo names the image filesystem (its mount point is used).
	ImageFsInfo(ctx context.Context, in *runtimeapi.ImageFsInfoRequest, opts ...grpc.CallOption) (*runtimeapi.ImageFsInfoResponse, error)
	// RemoveImage removes an image by ID; removing an absent image
	// succeeds (the CRI makes it idempotent).
	RemoveImage(ctx context.Context, in *runtimeapi.RemoveImageRequest, opts ...grpc.CallOption) (*runtimeapi.RemoveImageResponse, error)
}

var (
	_ Runtime = runtimeapi.RuntimeServiceClient(nil)
	_ Images  = runtimeapi.ImageServiceClient(nil)
)

// Clock is the time source of the collector, injected so that tests
// neither sleep nor depend on timing.
type Clock interface {
	Now() time.Time
	// After sends the time once d has passed, as time.After.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// FsStatsFunc reports the size of the filesystem mounted at mountpoint and
// the bytes available on it. Statfs is the default.
type FsStatsFunc func(mountpoint string) (capacity, available uint64, err error)
