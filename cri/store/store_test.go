package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/atomicfile"
	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/shim"
)

func TestContainerTransitions(t *testing.T) {
	all := []ContainerState{ContainerCreated, ContainerRunning, ContainerExited, ContainerUnknown}
	allowed := map[[2]ContainerState]bool{
		{ContainerCreated, ContainerRunning}: true,
		{ContainerCreated, ContainerExited}:  true,
		{ContainerRunning, ContainerExited}:  true,
	}
	for _, from := range all {
		for _, to := range all {
			err := from.Transition(to)
			if allowed[[2]ContainerState{from, to}] != (err == nil) {
				t.Errorf("%s → %s: err = %v", from, to, err)
			}
			if err != nil && !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Errorf("%s → %s: error %v is not FailedPrecondition", from, to, err)
			}
		}
	}
}

func newContainer(t *testing.T, s *Store, id string) *Container {
	t.Helper()
	dir := s.ContainerDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	meta := ContainerMeta{ID: id, SandboxID: "sb1", CreatedAt: time.Now().UnixNano()}
	meta.Config.Msg = &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: id}}
	c := NewContainer(dir, meta)
	if err := c.Commit(ContainerStatus{State: ContainerCreated}); err != nil {
		t.Fatal(err)
	}
	s.AddContainer(c)
	return c
}

// The shim's exit file decides the state of a running container, and the
// result survives a reload from disk.
func TestExitFileAppliesAndPersists(t *testing.T) {
	root := t.TempDir()
	s, _ := New(root)
	tests := []struct {
		id     string
		exit   shim.Exit
		reason string
	}{
		{"ok", shim.Exit{Code: 0}, ReasonCompleted},
		{"err", shim.Exit{Code: 3}, ReasonError},
		{"oom", shim.Exit{Code: 137, Signal: 9, OOMKilled: true}, ReasonOOMKilled},
	}
	for _, tt := range tests {
		c := newContainer(t, s, tt.id)
		c.Update(func(st *ContainerStatus) error { st.State = ContainerRunning; st.Pid = 42; return nil })
		if got := c.Status().State; got != ContainerRunning {
			t.Fatalf("%s: state %s before any exit", tt.id, got)
		}
		tt.exit.FinishedAt = time.Now().UTC()
		if err := atomicfile.WriteJSON(filepath.Join(c.Dir, ExitFile), tt.exit); err != nil {
			t.Fatal(err)
		}
		st := c.Status()
		if st.State != ContainerExited || st.ExitCode != int32(tt.exit.Code) || st.Reason != tt.reason || st.FinishedAt != tt.exit.FinishedAt.UnixNano() {
			t.Errorf("%s: status %+v, want exited %d %s", tt.id, st, tt.exit.Code, tt.reason)
		}
	}

	reloaded, _ := New(root)
	incomplete, errs := reloaded.Load()
	if len(incomplete) != 0 || len(errs) != 0 {
		t.Fatalf("Load: incomplete %v, errors %v", incomplete, errs)
	}
	c, err := reloaded.Container("oom")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(c.Dir, ExitFile)) // the status file alone must carry it now
	if st := c.Status(); st.State != ContainerExited || st.Reason != ReasonOOMKilled {
		t.Errorf("after reload: %+v", st)
	}
}

func TestLoadSeparatesIncompleteAndUnreadable(t *testing.T) {
	root := t.TempDir()
	s, _ := New(root)
	newContainer(t, s, "good")
	os.MkdirAll(s.ContainerDir("half"), 0o700) // crashed before its first write
	os.MkdirAll(s.ContainerDir("garbled"), 0o700)
	os.WriteFile(filepath.Join(s.ContainerDir("garbled"), metaFile), []byte("{not json"), 0o600)

	reloaded, _ := New(root)
	incomplete, errs := reloaded.Load()
	if len(incomplete) != 1 || incomplete[0].ID != "half" {
		t.Errorf("incomplete = %+v, want only half", incomplete)
	}
	if len(errs) != 1 {
		t.Errorf("errors = %v, want one for garbled", errs)
	}
	if _, err := os.Stat(s.ContainerDir("garbled")); err != nil {
		t.Errorf("an unreadable record was deleted: %v", err)
	}
	if _, err := reloaded.Container("good"); err != nil {
		t.Error(err)
	}
}

func TestLookupByPrefixAndNames(t *testing.T) {
	s, _ := New(t.TempDir())
	newContainer(t, s, "abc123")
	newContainer(t, s, "abd456")
	if c, err := s.Container("abc"); err != nil || c.Meta.ID != "abc123" {
		t.Errorf("prefix lookup = %v, %v", c, err)
	}
	if _, err := s.Container("ab"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ambiguous prefix: err = %v", err)
	}
	if _, err := s.Container("zzz"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown ID: err = %v", err)
	}
	if err := s.ReserveName("web_0@sb", "id1"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReserveName("web_0@sb", "id2"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second reservation: err = %v", err)
	}
	s.ReleaseName("web_0@sb", "id2") // not the holder: no effect
	if err := s.ReserveName("web_0@sb", "id2"); err == nil {
		t.Error("a non-holder released the name")
	}
	s.ReleaseName("web_0@sb", "id1")
	if err := s.ReserveName("web_0@sb", "id2"); err != nil {
		t.Errorf("after release: %v", err)
	}
}
