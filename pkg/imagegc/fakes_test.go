package imagegc

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeRuntime lists the containers it was given.
type fakeRuntime struct {
	mu         sync.Mutex
	containers []*runtimeapi.Container
	err        error
}

var _ Runtime = (*fakeRuntime)(nil)

func (f *fakeRuntime) ListContainers(ctx context.Context, in *runtimeapi.ListContainersRequest, _ ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return &runtimeapi.ListContainersResponse{Containers: slices.Clone(f.containers)}, nil
}

func (f *fakeRuntime) set(ctrs ...*runtimeapi.Container) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers = ctrs
}

// fakeImages is an image store in memory on a filesystem mounted at
// /images.
type fakeImages struct {
	mu        sync.Mutex
	images    []*runtimeapi.Image
	removed   []string         // IDs, in the order of the calls that succeeded
	removeErr map[string]error // by ID
	listErr   error
	fsInfo    *runtimeapi.ImageFsInfoResponse // nil: one filesystem at /images
	calls     int
}

var _ Images = (*fakeImages)(nil)

func (f *fakeImages) ListImages(ctx context.Context, in *runtimeapi.ListImagesRequest, _ ...grpc.CallOption) (*runtimeapi.ListImagesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.listErr != nil {
		return nil, f.listErr
	}
	return &runtimeapi.ListImagesResponse{Images: slices.Clone(f.images)}, nil
}

func (f *fakeImages) ImageFsInfo(ctx context.Context, in *runtimeapi.ImageFsInfoRequest, _ ...grpc.CallOption) (*runtimeapi.ImageFsInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fsInfo != nil {
		return f.fsInfo, nil
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{{FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: "/images"}}}}, nil
}

func (f *fakeImages) RemoveImage(ctx context.Context, in *runtimeapi.RemoveImageRequest, _ ...grpc.CallOption) (*runtimeapi.RemoveImageResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	id := in.GetImage().GetImage()
	if err := f.removeErr[id]; err != nil {
		return nil, err
	}
	f.images = slices.DeleteFunc(f.images, func(i *runtimeapi.Image) bool { return i.GetId() == id })
	f.removed = append(f.removed, id)
	return &runtimeapi.RemoveImageResponse{}, nil
}

func (f *fakeImages) add(imgs ...*runtimeapi.Image) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images = append(f.images, imgs...)
}

func (f *fakeImages) removedIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.removed)
}

// fakeClock is set by hand; After hands its channel to the test through
// waiters, so the test decides when a period has passed.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters chan fakeTimer
}

type fakeTimer struct {
	d    time.Duration
	fire chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, waiters: make(chan fakeTimer, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	t := fakeTimer{d: d, fire: make(chan time.Time, 1)}
	c.waiters <- t
	return t.fire
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeFs is a filesystem of a set capacity and free space.
type fakeFs struct {
	mu                  sync.Mutex
	capacity, available uint64
	err                 error
	mountpoints         []string
}

func (f *fakeFs) stats(mountpoint string) (uint64, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mountpoints = append(f.mountpoints, mountpoint)
	return f.capacity, f.available, f.err
}

// setUsed makes the filesystem 1000 bytes in size with used bytes used.
func (f *fakeFs) setUsed(used uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.capacity, f.available = 1000, 1000-used
}

var errFake = errors.New("fake failure")
