package imagegc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// GC is the image garbage collector of one node. Its methods may be
// called from several goroutines; passes are serialised.
type GC struct {
	cfg     Config
	runtime Runtime
	images  Images
	clock   Clock
	fsStats FsStatsFunc
	log     *slog.Logger

	// pass is held (a token in a one-slot channel, so that waiting for
	// it honours a context) by the goroutine that runs a pass; records
	// belong to it.
	pass    chan struct{}
	records map[string]record // by image ID
}

// Option changes a default of New.
type Option func(*GC)

// WithClock replaces the wall clock.
func WithClock(c Clock) Option { return func(g *GC) { g.clock = c } }

// WithFsStats replaces Statfs as the source of the image filesystem's
// capacity and available bytes.
func WithFsStats(f FsStatsFunc) Option { return func(g *GC) { g.fsStats = f } }

// WithLogger replaces slog.Default().
func WithLogger(l *slog.Logger) Option { return func(g *GC) { g.log = l } }

// New returns a collector of images through the CRI clients runtime and
// images, with the policy cfg. It validates cfg (the caller logs the
// warnings of cfg.Validate) and has no side effects.
func New(cfg Config, runtime Runtime, images Images, opts ...Option) (*GC, error) {
	if _, err := cfg.Validate(); err != nil {
		return nil, err
	}
	if runtime == nil || images == nil {
		return nil, errors.New("imagegc: a runtime and an image service client are required")
	}
	g := &GC{
		cfg:     cfg,
		runtime: runtime,
		images:  images,
		clock:   realClock{},
		fsStats: Statfs,
		log:     slog.Default(),
		pass:    make(chan struct{}, 1),
		records: map[string]record{},
	}
	for _, o := range opts {
		o(g)
	}
	return g, nil
}

// Run collects images every Period until ctx ends, then returns nil. It
// records the images present at once (so that MinAge counts from now)
// and runs its first pass one Period later; each period is counted from
// the end of the previous pass. Errors of a pass are logged and the next
// pass runs as planned. With collection disabled it only waits for ctx.
func (g *GC) Run(ctx context.Context) error {
	if g.cfg.Disabled() {
		g.log.Info("image garbage collection disabled", "highThresholdPercent", g.cfg.HighThresholdPercent)
		<-ctx.Done()
		return nil
	}
	if err := g.observeOnly(ctx); err != nil && ctx.Err() == nil {
		g.log.Warn("image garbage collection: recording images", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-g.clock.After(g.cfg.Period):
		}
		if _, err := g.Collect(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("image garbage collection", "err", err)
		}
	}
}

// observeOnly refreshes the records without deciding anything.
func (g *GC) observeOnly(ctx context.Context) error {
	if err := g.acquire(ctx); err != nil {
		return err
	}
	defer g.release()
	_, _, err := g.observe(ctx, g.clock.Now())
	return err
}

// Collect runs one pass (see the package documentation) and returns the
// bytes it freed, the sum of the sizes of the images it removed. It
// returns an error when it could not observe the images or the
// filesystem, or could not free what was needed to reach the low
// threshold (too few eligible images, or failed removals, each of which
// is logged). With collection disabled it does nothing.
func (g *GC) Collect(ctx context.Context) (freed uint64, err error) {
	if g.cfg.Disabled() {
		return 0, nil
	}
	if err := g.acquire(ctx); err != nil {
		return 0, err
	}
	defer g.release()

	now := g.clock.Now()
	imgs, used, err := g.observe(ctx, now)
	if err != nil {
		return 0, err
	}
	mountpoint, u, err := g.fsUsage(ctx)
	if err != nil {
		return 0, err
	}
	p := policyAt(g.cfg, now)
	if !p.over(u) {
		g.log.Debug("image garbage collection: usage below the high threshold",
			"mountpoint", mountpoint, "usagePercent", fmt.Sprintf("%.1f", u.percent()), "highThresholdPercent", p.high, "images", len(imgs))
		return 0, nil
	}
	need := p.bytesToFree(u)
	removals := plan(p, imgs, used, g.records, u)
	freed, failed := g.remove(ctx, removals)
	g.log.Info("image garbage collection",
		"mountpoint", mountpoint,
		"usagePercent", fmt.Sprintf("%.1f", u.percent()),
		"highThresholdPercent", p.high,
		"targetPercent", p.low,
		"bytesToFree", need,
		"freed", freed,
		"removed", len(removals)-failed,
		"failed", failed)
	if err := ctx.Err(); err != nil {
		return freed, err
	}
	if freed < need {
		return freed, fmt.Errorf("imagegc: freed %d of the %d bytes needed to bring %s from %.1f%% to %d%%: %d images could go, %d of them failed",
			freed, need, mountpoint, u.percent(), p.low, len(removals), failed)
	}
	return freed, nil
}

// RemoveUnused removes every image no container uses that is old enough
// (MinAge), whatever the thresholds say, even with collection disabled:
// the eviction manager's reclaim before it evicts pods for a full
// filesystem, as kubelet's DeleteUnusedImages. It returns the bytes freed.
func (g *GC) RemoveUnused(ctx context.Context) (uint64, error) {
	if err := g.acquire(ctx); err != nil {
		return 0, err
	}
	defer g.release()
	now := g.clock.Now()
	imgs, used, err := g.observe(ctx, now)
	if err != nil {
		return 0, err
	}
	removals := unused(policyAt(g.cfg, now), imgs, used, g.records)
	freed, failed := g.remove(ctx, removals)
	if len(removals) > 0 {
		g.log.Info("image garbage collection: unused images removed to relieve disk pressure", "freed", freed, "removed", len(removals)-failed, "failed", failed)
	}
	if failed > 0 {
		return freed, fmt.Errorf("imagegc: %d of %d unused images could not be removed", failed, len(removals))
	}
	return freed, ctx.Err()
}

func (g *GC) acquire(ctx context.Context) error {
	select {
	case g.pass <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *GC) release() { <-g.pass }

// observe lists images and containers and refreshes the records as of
// now. The caller holds the pass.
func (g *GC) observe(ctx context.Context, now time.Time) ([]image, inUse, error) {
	il, err := g.images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return nil, nil, fmt.Errorf("imagegc: list images: %w", err)
	}
	cl, err := g.runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return nil, nil, fmt.Errorf("imagegc: list containers: %w", err)
	}
	imgs, used := imagesFromCRI(il.GetImages()), inUseBy(cl.GetContainers())
	g.records = refresh(g.records, imgs, used, now)
	return imgs, used, nil
}

// fsUsage measures the first image filesystem ImageFsInfo names, as
// kubelet does.
func (g *GC) fsUsage(ctx context.Context) (string, usage, error) {
	resp, err := g.images.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		return "", usage{}, fmt.Errorf("imagegc: image filesystem info: %w", err)
	}
	fss := resp.GetImageFilesystems()
	if len(fss) == 0 {
		return "", usage{}, errors.New("imagegc: ImageFsInfo lists no image filesystem")
	}
	mountpoint := fss[0].GetFsId().GetMountpoint()
	if mountpoint == "" {
		return "", usage{}, errors.New("imagegc: ImageFsInfo names no mount point for the image filesystem")
	}
	capacity, available, err := g.fsStats(mountpoint)
	if err != nil {
		return "", usage{}, err
	}
	if capacity == 0 {
		return "", usage{}, fmt.Errorf("imagegc: image filesystem %s reports a capacity of 0", mountpoint)
	}
	return mountpoint, usage{capacity: capacity, available: available}, nil
}

// remove removes the planned images in order, logging each, and stops
// early only when ctx ends (the images it did not try then count as
// failed). The caller holds the pass.
func (g *GC) remove(ctx context.Context, removals []removal) (freed uint64, failed int) {
	for i, r := range removals {
		if ctx.Err() != nil {
			return freed, failed + len(removals) - i
		}
		attrs := []any{"image", r.image.id, "tags", r.image.tags, "size", r.image.size, "reason", r.reason}
		_, err := g.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: r.image.id}})
		if err != nil {
			failed++
			g.log.Warn("image garbage collection: removing image failed", append(attrs, "err", err)...)
			continue
		}
		freed += r.image.size
		delete(g.records, r.image.id)
		g.log.Info("image garbage collection: removed image", attrs...)
	}
	return freed, failed
}
