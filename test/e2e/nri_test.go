package e2e

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"

	"github.com/berth-project/berth/test/testutil"
)

// recorder is an NRI plugin (a real one, through containerd/nri's stub)
// that records the events it gets, adds an environment variable to every
// container and refuses containers named "vetoed".
type recorder struct {
	mu     sync.Mutex
	events []string // "Event sandbox-or-container-name"
}

func (r *recorder) add(ev, name string) {
	r.mu.Lock()
	r.events = append(r.events, ev+" "+name)
	r.mu.Unlock()
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) RunPodSandbox(_ context.Context, p *api.PodSandbox) error {
	r.add("RunPodSandbox", p.GetName())
	return nil
}

func (r *recorder) StopPodSandbox(_ context.Context, p *api.PodSandbox) error {
	r.add("StopPodSandbox", p.GetName())
	return nil
}

func (r *recorder) RemovePodSandbox(_ context.Context, p *api.PodSandbox) error {
	r.add("RemovePodSandbox", p.GetName())
	return nil
}

func (r *recorder) CreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	r.add("CreateContainer", c.GetName())
	if c.GetName() == "vetoed" {
		return nil, nil, errors.New("plugin says no")
	}
	adj := &api.ContainerAdjustment{}
	adj.AddEnv("FROM_NRI", "injected")
	return adj, nil, nil
}

func (r *recorder) StartContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	r.add("StartContainer", c.GetName())
	return nil
}

func (r *recorder) StopContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) ([]*api.ContainerUpdate, error) {
	r.add("StopContainer", c.GetName())
	return nil, nil
}

func (r *recorder) RemoveContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	r.add("RemoveContainer", c.GetName())
	return nil
}

func TestNRIPlugin(t *testing.T) {
	e := newEnvWith(t, (*harness.Daemon).EnableNRI)
	d := e.d

	rec := &recorder{}
	plugin, err := stub.New(rec, stub.WithSocketPath(d.NRISocket()), stub.WithPluginName("e2e-recorder"), stub.WithPluginIdx("10"))
	if err != nil {
		t.Fatal(err)
	}
	if err := plugin.Start(context.Background()); err != nil {
		t.Fatalf("plugin start: %v", err)
	}
	defer plugin.Stop()

	pod := e.podConfig("nripod")
	podID := e.runPod(pod)
	st, out := e.runToExit(podID, pod, containerConfig("app", []string{"sh", "-c", "echo $FROM_NRI"}))
	if st.GetExitCode() != 0 || out != "injected\n" {
		t.Errorf("the plugin's adjustment: exit %d, output %q", st.GetExitCode(), out)
	}
	_, err = e.rt.CreateContainer(ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID,
		Config: containerConfig("vetoed", []string{"true"}), SandboxConfig: pod})
	wantCode(t, "a container the plugin refuses", err, codes.Unknown, "plugin says no")
	list, err := e.rt.ListContainers(ctx(t), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetContainers()) != 1 {
		t.Errorf("%d containers after the veto, want the one that ran", len(list.GetContainers()))
	}
	e.removePod(podID)

	// Each object's events come in order. (An exit is reported by the
	// exit watcher, so the app's stop may come before or after the veto.)
	testutil.Eventually(t, "the plugin to see the whole lifecycle", func() bool { return len(rec.seen()) >= 8 })
	got := rec.seen()
	for _, want := range [][]string{
		{"RunPodSandbox nripod", "StopPodSandbox nripod", "RemovePodSandbox nripod"},
		{"CreateContainer app", "StartContainer app", "StopContainer app", "RemoveContainer app"},
		{"CreateContainer vetoed"},
	} {
		var mine []string
		for _, ev := range got {
			if strings.HasSuffix(ev, " "+strings.Fields(want[0])[1]) {
				mine = append(mine, ev)
			}
		}
		if !slices.Equal(mine, want) {
			t.Errorf("plugin saw %v for %s, want %v (all: %v)", mine, strings.Fields(want[0])[1], want, got)
		}
	}
	if len(got) != 8 || got[0] != "RunPodSandbox nripod" || got[7] != "RemovePodSandbox nripod" {
		t.Errorf("plugin saw:\n%s\nwant the sandbox's run first, its removal last, 8 events", strings.Join(got, "\n"))
	}
}
