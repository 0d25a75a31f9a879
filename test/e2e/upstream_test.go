package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/pkg/source"
	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/testutil"
)

// manifestServer serves a pod list on a fixed loopback port that can be
// taken down and brought back.
type manifestServer struct {
	t    *testing.T
	addr string

	mu   sync.Mutex
	body string
	srv  *http.Server // nil while down
}

func newManifestServer(t *testing.T) *manifestServer {
	s := &manifestServer{t: t, addr: "127.0.0.1:0"}
	s.up()
	t.Cleanup(s.down)
	return s
}

func (s *manifestServer) URL() string { return "http://" + s.addr + "/pods" }

func (s *manifestServer) serve(names ...string) {
	var items []string
	for _, n := range names {
		items = append(items, fmt.Sprintf(`{"metadata":{"name":%q},"spec":{"terminationGracePeriodSeconds":0,`+
			`"containers":[{"name":"main","image":%q,"command":["sleep","3600"]}]}}`, n, busybox))
	}
	s.mu.Lock()
	s.body = `{"apiVersion":"v1","kind":"PodList","items":[` + strings.Join(items, ",") + `]}`
	s.mu.Unlock()
}

func (s *manifestServer) up() {
	if s.srv != nil {
		return
	}
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.addr = l.Addr().String()
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Write([]byte(s.body))
	})}
	go s.srv.Serve(l)
}

func (s *manifestServer) down() {
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

// TestURLUpstream: berth follows a manifest URL as kubelet's staticPodURL,
// keeps the last good set while the URL is unreachable, and after a
// restart of berthd with the URL down runs its pods from the journal.
func TestURLUpstream(t *testing.T) {
	srv := newManifestServer(t)
	srv.serve("fromurl", "local")
	e := newEnvWith(t, func(d *harness.Daemon) {
		d.AddArgs("--manifest-url", srv.URL(), "--http-check-frequency", "1s")
		// There first, so the file's pod is the one that runs.
		if err := os.MkdirAll(d.Manifests, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d.Manifests, "local.yaml"), []byte(sleeperManifest("local", "")), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	// Runs before the daemon's cleanup: the URL's pods go too.
	t.Cleanup(func() {
		srv.up()
		srv.serve()
	})
	upstream := func() source.UpstreamStatus {
		var s source.UpstreamStatus
		e.apiGet("/upstream", &s)
		return s
	}
	waitUpstream := func(what string, cond func(source.UpstreamStatus) bool) source.UpstreamStatus {
		t.Helper()
		var s source.UpstreamStatus
		testutil.Eventually(t, "upstream "+what, func() bool { s = upstream(); return cond(s) })
		return s
	}

	p := e.waitPod("fromurl", "running", running)
	if p.Annotations["kubernetes.io/config.source"] != "http" {
		t.Errorf("annotations %v, want config.source http", p.Annotations)
	}
	e.waitPod("local", "running", running)
	// The URL's "local" loses to the manifest file's, and says so.
	s := waitUpstream("refusing the duplicate", func(s source.UpstreamStatus) bool { return len(s.Refused) == 1 })
	if want := "pod default/local-" + e.d.NodeName + " is already defined in " + e.d.Manifests + "/local.yaml"; s.Refused[0] != want {
		t.Errorf("refused %q, want %q", s.Refused[0], want)
	}
	if out := e.berthctl("status"); !strings.Contains(out, "upstream: url, connected") || !strings.Contains(out, "REFUSED pod default/local-") {
		t.Errorf("berthctl status:\n%s", out)
	}
	id := p.Status.ContainerStatuses[0].ContainerID

	// A pod added to the list runs; the others are left alone.
	srv.serve("fromurl", "second")
	e.waitPod("second", "running", running)

	// The URL goes away: nothing stops.
	srv.down()
	waitUpstream("disconnected", func(s source.UpstreamStatus) bool {
		return s.Connection == "disconnected" && strings.Contains(s.Error, "connection refused")
	})
	if out := e.berthctl("status"); !strings.Contains(out, "upstream: url, disconnected") || !strings.Contains(out, "connection refused") {
		t.Errorf("berthctl status:\n%s", out)
	}
	for _, name := range []string{"fromurl", "second", "local"} {
		e.waitPod(name, "still running with the URL down", running)
	}

	// berthd restarts while the URL is down: the URL's pods come from the
	// journal and are managed (a stopped container is restarted), none
	// was restarted by the restart itself.
	e.restart()
	e.rt = e.d.Runtime
	s = waitUpstream("running from the journal", func(s source.UpstreamStatus) bool { return s.FromJournal && s.Complete })
	if len(s.Pods) != 2 {
		t.Errorf("journal pods %+v", s.Pods)
	}
	p = e.waitPod("fromurl", "running after the restart", running)
	if got := p.Status.ContainerStatuses[0].ContainerID; got != id {
		t.Errorf("container %s after berthd's restart, was %s", got, id)
	}
	if _, err := e.rt.StopContainer(ctx(t), &runtimeapi.StopContainerRequest{ContainerId: strings.TrimPrefix(id, "berth://"), Timeout: 0}); err != nil {
		t.Fatal(err)
	}
	p = e.waitPod("fromurl", "restarted with the URL down", func(p corev1.Pod) bool {
		return running(p) && p.Status.ContainerStatuses[0].RestartCount == 1
	})
	id = p.Status.ContainerStatuses[0].ContainerID

	// The URL is back: in sync again, nothing restarted; a pod removed
	// from the list goes.
	srv.up()
	waitUpstream("connected again", func(s source.UpstreamStatus) bool { return s.Connection == "connected" && !s.FromJournal })
	srv.serve("fromurl")
	testutil.Eventually(t, "pod second gone", func() bool {
		_, ok := e.agentPod("second")
		return !ok && len(e.podSandboxes("second")) == 0
	})
	p = e.waitPod("fromurl", "running", running)
	if got := p.Status.ContainerStatuses[0].ContainerID; got != id || p.Status.ContainerStatuses[0].RestartCount != 1 {
		t.Errorf("container %s (restarts %d) after the URL came back, was %s", got, p.Status.ContainerStatuses[0].RestartCount, id)
	}
}
