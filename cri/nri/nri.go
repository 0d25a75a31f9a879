// Package nri relays berth's pod and container lifecycle to NRI plugins
// (the Node Resource Interface, through containerd/nri's adaptation): they
// see every sandbox and container event, may adjust a container's OCI spec
// before it is created, and may fail an operation, as with containerd.
//
// A nil *NRI is NRI turned off: every method is then a no-op.
package nri

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	nrilog "github.com/containerd/nri/pkg/log"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	rtgen "github.com/opencontainers/runtime-tools/generate"
)

// Config says where plugins connect and where pre-installed ones live.
type Config struct {
	Socket           string // "" turns NRI off
	PluginPath       string // plugins NRI starts itself
	PluginConfigPath string
	Version          string // berth's, reported to plugins
	// RequestTimeout bounds each plugin call (a plugin past it is
	// disconnected); 0 means NRI's default (2 s).
	RequestTimeout time.Duration
}

// State lists the runtime's ready sandboxes and live containers, for
// synchronising a plugin that connects.
type State func() ([]*api.PodSandbox, []*api.Container)

// NRI is berth's side of NRI.
type NRI struct {
	a *adaptation.Adaptation

	mu sync.Mutex
	// Stop events go out once per sandbox and container, whichever of
	// StopPodSandbox/StopContainer or an exit comes first.
	podStops map[string]*sync.Once
	ctrStops map[string]*sync.Once
}

// New prepares NRI (nil when cfg.Socket is empty); Start listens.
func New(cfg Config, state State, log *slog.Logger) (*NRI, error) {
	if cfg.Socket == "" {
		return nil, nil
	}
	nrilog.Set(logger{log})
	if cfg.RequestTimeout > 0 {
		adaptation.SetPluginRequestTimeout(cfg.RequestTimeout)
	}
	syncFn := func(ctx context.Context, cb adaptation.SyncCB) error {
		pods, ctrs := state()
		updates, err := cb(ctx, pods, ctrs)
		if err != nil {
			return err
		}
		if len(updates) > 0 {
			return fmt.Errorf("NRI: berth does not apply container updates at synchronisation (%d asked)", len(updates))
		}
		return nil
	}
	update := func(_ context.Context, updates []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
		// Unsolicited updates are refused: they all come back as failed.
		return updates, nil
	}
	opts := []adaptation.Option{adaptation.WithSocketPath(cfg.Socket)}
	if cfg.PluginPath != "" {
		opts = append(opts, adaptation.WithPluginPath(cfg.PluginPath))
	}
	if cfg.PluginConfigPath != "" {
		opts = append(opts, adaptation.WithPluginConfigPath(cfg.PluginConfigPath))
	}
	a, err := adaptation.New("berth", cfg.Version, syncFn, update, opts...)
	if err != nil {
		return nil, fmt.Errorf("NRI: %w", err)
	}
	return &NRI{a: a, podStops: map[string]*sync.Once{}, ctrStops: map[string]*sync.Once{}}, nil
}

// Start starts pre-installed plugins and listens for others.
func (n *NRI) Start() error {
	if n == nil {
		return nil
	}
	if err := n.a.Start(); err != nil {
		return fmt.Errorf("NRI: %w", err)
	}
	return nil
}

// Stop disconnects the plugins.
func (n *NRI) Stop() {
	if n != nil {
		n.a.Stop()
	}
}

// Block holds plugin synchronisation off until the returned function is
// called: held from an object's hook until it is in the store, so that a
// plugin connecting meanwhile neither misses it nor sees it twice.
func (n *NRI) Block() (unblock func()) {
	if n == nil {
		return func() {}
	}
	return n.a.BlockPluginSync().Unblock
}

// RunPodSandbox tells plugins of a new sandbox; an error fails its creation.
func (n *NRI) RunPodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	if n == nil {
		return nil
	}
	return wrap("RunPodSandbox", n.a.RunPodSandbox(ctx, &api.RunPodSandboxRequest{Pod: pod}))
}

// StopPodSandbox tells plugins a sandbox stops, once per sandbox.
func (n *NRI) StopPodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	if n == nil {
		return nil
	}
	var err error
	n.once(n.podStops, pod.GetId()).Do(func() {
		err = wrap("StopPodSandbox", n.a.StopPodSandbox(ctx, &api.StopPodSandboxRequest{Pod: pod}))
	})
	return err
}

// RemovePodSandbox tells plugins a sandbox is gone.
func (n *NRI) RemovePodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	if n == nil {
		return nil
	}
	n.forget(n.podStops, pod.GetId())
	return wrap("RemovePodSandbox", n.a.RemovePodSandbox(ctx, &api.RemovePodSandboxRequest{Pod: pod}))
}

// CreateContainer tells plugins of a container about to be created and
// applies their adjustments to its spec; an error fails the creation.
func (n *NRI) CreateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container, spec *specs.Spec) error {
	if n == nil {
		return nil
	}
	resp, err := n.a.CreateContainer(ctx, &api.CreateContainerRequest{Pod: pod, Container: ctr})
	if err != nil {
		return wrap("CreateContainer", err)
	}
	if len(resp.GetUpdate()) > 0 || len(resp.GetEvict()) > 0 {
		return fmt.Errorf("NRI CreateContainer: berth does not apply updates or evictions of other containers")
	}
	if adj := resp.GetAdjust(); adj != nil {
		gen := rtgen.NewFromSpec(spec)
		if err := nrigen.SpecGenerator(&gen).Adjust(adj); err != nil {
			return fmt.Errorf("NRI CreateContainer: apply plugin adjustments: %w", err)
		}
	}
	return nil
}

// PostCreateContainer tells plugins a container was created.
func (n *NRI) PostCreateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	if n == nil {
		return nil
	}
	return wrap("PostCreateContainer", n.a.PostCreateContainer(ctx, &api.PostCreateContainerRequest{Pod: pod, Container: ctr}))
}

// StartContainer tells plugins a container is about to start; an error
// fails the start.
func (n *NRI) StartContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	if n == nil {
		return nil
	}
	return wrap("StartContainer", n.a.StartContainer(ctx, &api.StartContainerRequest{Pod: pod, Container: ctr}))
}

// PostStartContainer tells plugins a container started.
func (n *NRI) PostStartContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	if n == nil {
		return nil
	}
	return wrap("PostStartContainer", n.a.PostStartContainer(ctx, &api.PostStartContainerRequest{Pod: pod, Container: ctr}))
}

// StopContainer tells plugins a container stopped (asked to, or exited),
// once per container.
func (n *NRI) StopContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	if n == nil {
		return nil
	}
	var err error
	n.once(n.ctrStops, ctr.GetId()).Do(func() {
		var resp *api.StopContainerResponse
		resp, err = n.a.StopContainer(ctx, &api.StopContainerRequest{Pod: pod, Container: ctr})
		if err == nil && len(resp.GetUpdate()) > 0 {
			err = fmt.Errorf("berth does not apply updates of other containers")
		}
		err = wrap("StopContainer", err)
	})
	return err
}

// RemoveContainer tells plugins a container is gone.
func (n *NRI) RemoveContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	if n == nil {
		return nil
	}
	n.forget(n.ctrStops, ctr.GetId())
	return wrap("RemoveContainer", n.a.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: pod, Container: ctr}))
}

func (n *NRI) once(m map[string]*sync.Once, id string) *sync.Once {
	n.mu.Lock()
	defer n.mu.Unlock()
	o := m[id]
	if o == nil {
		o = &sync.Once{}
		m[id] = o
	}
	return o
}

func (n *NRI) forget(m map[string]*sync.Once, id string) {
	n.mu.Lock()
	delete(m, id)
	n.mu.Unlock()
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("NRI %s: %w", op, err)
}

// logger sends NRI's own messages to berth's log.
type logger struct{ l *slog.Logger }

func (g logger) Debugf(_ context.Context, f string, a ...any) {
	g.l.Debug("nri: " + fmt.Sprintf(f, a...))
}
func (g logger) Infof(_ context.Context, f string, a ...any) {
	g.l.Info("nri: " + fmt.Sprintf(f, a...))
}
func (g logger) Warnf(_ context.Context, f string, a ...any) {
	g.l.Warn("nri: " + fmt.Sprintf(f, a...))
}
func (g logger) Errorf(_ context.Context, f string, a ...any) {
	g.l.Error("nri: " + fmt.Sprintf(f, a...))
}
