package source

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/pkg/manifest"
)

// applied records what a mux hands the agent.
type applied struct {
	calls    int
	pods     []string
	complete bool
}

func (a *applied) apply(pods []*v1.Pod, complete bool) error {
	a.calls++
	a.pods, a.complete = nil, complete
	for _, p := range pods {
		a.pods = append(a.pods, p.Name+"@"+string(p.UID))
	}
	return nil
}

func (a *applied) want(t *testing.T, complete bool, pods ...string) {
	t.Helper()
	if strings.Join(a.pods, ",") != strings.Join(pods, ",") || a.complete != complete {
		t.Fatalf("applied %v complete=%v, want %v complete=%v", a.pods, a.complete, pods, complete)
	}
}

func newTestMux(t *testing.T, journal string) (*Mux, *applied) {
	a := &applied{}
	return NewMux(MuxConfig{Apply: a.apply, Upstream: "url", Journal: journal}), a
}

func TestMuxWithoutUpstreamIsCompleteAtOnce(t *testing.T) {
	a := &applied{}
	m := NewMux(MuxConfig{Apply: a.apply})
	m.Files([]manifest.File{file("a.yaml", podNamed("web", "1"))})
	a.want(t, true, "web@u-1")
	m.Files([]manifest.File{file("a.yaml", podNamed("web", "1"))})
	if a.calls != 1 {
		t.Errorf("an unchanged reading was applied again (%d calls)", a.calls)
	}
}

func TestMuxStaticPodsDoNotWaitForTheUpstream(t *testing.T) {
	journal := filepath.Join(t.TempDir(), "upstream", "url.json")
	m, a := newTestMux(t, journal)
	m.Pods([]*v1.Pod{podNamed("early", "e")}) // before the directory is read: held back
	if a.calls != 0 {
		t.Fatalf("applied before the manifest directory was read: %v", a.pods)
	}
	m, a = newTestMux(t, filepath.Join(t.TempDir(), "url.json"))
	m.Files([]manifest.File{file("a.yaml", podNamed("web", "1"))})
	a.want(t, false, "web@u-1") // the upstream is unknown: nothing may be torn down yet
	if got := m.Upstream(); got.Connection != "connecting" || got.Complete {
		t.Errorf("status %+v", got)
	}

	// Unreachable: nothing changes.
	m.Connected(errors.New("dial tcp 10.0.0.1:80: connection refused"))
	if a.calls != 1 {
		t.Errorf("a connection error was applied")
	}
	if got := m.Upstream(); got.Connection != "disconnected" || !strings.Contains(got.Error, "connection refused") {
		t.Errorf("status %+v", got)
	}
	m.Connected(nil)
	m.Pods([]*v1.Pod{podNamed("api", "2")})
	a.want(t, true, "api@u-2", "web@u-1")
	if got := m.Upstream(); got.Connection != "connected" || !got.Complete || len(got.Pods) != 1 || got.LastSync.IsZero() {
		t.Errorf("status %+v", got)
	}
}

func TestMuxJournalRestoresTheUpstreamSet(t *testing.T) {
	journal := filepath.Join(t.TempDir(), "upstream", "url.json")
	m, _ := newTestMux(t, journal)
	m.Files(nil)
	m.Pods([]*v1.Pod{podNamed("api", "2")})
	fi, err := os.Stat(journal)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode %v, want 0600 (it may hold secrets)", fi.Mode().Perm())
	}

	// berthd restarts with the upstream unreachable: the journal's pods
	// run at once, and the set is complete.
	m, a := newTestMux(t, journal)
	m.Files([]manifest.File{file("a.yaml", podNamed("web", "1"))})
	a.want(t, true, "api@u-2", "web@u-1")
	if !m.Upstream().FromJournal {
		t.Error("status does not say the set comes from the journal")
	}
	// The upstream says the same: nothing to do; says less: it goes.
	m.Pods([]*v1.Pod{podNamed("api", "2")})
	if a.calls != 1 || m.Upstream().FromJournal {
		t.Errorf("calls %d, status %+v", a.calls, m.Upstream())
	}
	m.Pods(nil)
	a.want(t, true, "web@u-1")

	// An empty set is a set: after a restart nothing comes back.
	m, a = newTestMux(t, journal)
	m.Files(nil)
	a.want(t, true)

	// A damaged journal leaves the upstream's pods unknown: none is torn
	// down until the upstream answers.
	if err := os.WriteFile(journal, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, a = newTestMux(t, journal)
	m.Files(nil)
	a.want(t, false)
}

func TestMuxConflicts(t *testing.T) {
	m, a := newTestMux(t, filepath.Join(t.TempDir(), "url.json"))
	// Both new at once: the file wins, the upstream's pod is refused alone.
	m.Files([]manifest.File{file("/m/web.yaml", podNamed("web", "f"))})
	m.Pods([]*v1.Pod{podNamed("web", "u"), podNamed("db", "u")})
	a.want(t, true, "db@u-u", "web@u-f")
	if got := m.Upstream().Refused; len(got) != 1 || got[0] != "pod default/web is already defined in /m/web.yaml" {
		t.Errorf("refused %q", got)
	}
	// The file goes: the upstream's pod runs. A new file defining it is
	// refused whole, with the reason.
	m.Files(nil)
	a.want(t, true, "db@u-u", "web@u-u")
	m.Files([]manifest.File{file("/m/both.yaml", podNamed("web", "f2"), podNamed("cache", "f2"))})
	a.want(t, true, "db@u-u", "web@u-u")
	got := m.Manifests()
	if len(got) != 1 || got[0].Err == nil || got[0].Err.Error() != "/m/both.yaml: pod default/web is already defined by the url upstream" {
		t.Errorf("manifests %+v", got)
	}
	if len(m.Upstream().Refused) != 0 {
		t.Errorf("refused %q", m.Upstream().Refused)
	}
}
