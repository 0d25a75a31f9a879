package store

import (
	"fmt"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/shim"
)

// SandboxMeta is fixed when the sandbox is created.
type SandboxMeta struct {
	Version        int                                     `json:"version"`
	ID             string                                  `json:"id"`
	Config         protoJSON[*runtimeapi.PodSandboxConfig] `json:"config"`
	RuntimeHandler string                                  `json:"runtimeHandler,omitempty"`
	CreatedAt      int64                                   `json:"createdAt"` // unix nanoseconds
	NetNS          string                                  `json:"netns,omitempty"`
	ShmPath        string                                  `json:"shmPath,omitempty"` // a tmpfs berth mounted
	CgroupParent   string                                  `json:"cgroupParent"`
}

// SandboxStatus changes over the sandbox's life.
type SandboxStatus struct {
	State SandboxState `json:"state"`
	Pid   int          `json:"pid,omitempty"` // the pause process
	Shim  shim.Process `json:"shim"`
	IPs   []string     `json:"ips,omitempty"`
	// NetworkTornDown is set once CNI DEL and netns removal succeeded.
	NetworkTornDown bool   `json:"networkTornDown,omitempty"`
	Reason          string `json:"reason,omitempty"`
}

// Sandbox is one pod sandbox record. Meta is immutable and may be read
// without locking; the status is reached through the methods.
type Sandbox struct {
	Meta SandboxMeta
	Dir  string // record directory

	mu     sync.Mutex
	status SandboxStatus
}

// NewSandbox returns a sandbox record for dir; nothing is written yet.
func NewSandbox(dir string, meta SandboxMeta) *Sandbox {
	meta.Version = Version
	return &Sandbox{Meta: meta, Dir: dir}
}

// Config is the sandbox's CRI configuration. Callers must not modify it.
func (s *Sandbox) Config() *runtimeapi.PodSandboxConfig { return s.Meta.Config.Msg }

// Commit writes meta and status: from then on the sandbox survives a
// restart of berthd.
func (s *Sandbox) Commit(status SandboxStatus) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeRecord(s.Dir, s.Meta, status); err != nil {
		return fmt.Errorf("sandbox %s: %w", s.Meta.ID, err)
	}
	s.status = status
	return nil
}

// Status returns the current status. A ready sandbox whose pause process
// has exited, or whose shim is gone, is reported (and recorded) not ready.
func (s *Sandbox) Status() SandboxStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.State != SandboxReady {
		return s.status
	}
	exit, err := readExit(s.Dir)
	switch {
	case exit != nil:
		s.status.Reason = fmt.Sprintf("pause process exited with code %d", exit.Code)
	case err != nil:
		s.status.Reason = err.Error()
	case !s.status.Shim.Alive():
		s.status.Reason = "berth-shim exited unexpectedly"
	default:
		return s.status
	}
	s.status.State = SandboxNotReady
	writeRecord(s.Dir, nil, s.status) // best effort: recomputed on the next read anyway
	return s.status
}

// Update changes the status with fn and writes it. fn's error aborts.
func (s *Sandbox) Update(fn func(*SandboxStatus) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.IPs = append([]string(nil), st.IPs...)
	if err := fn(&st); err != nil {
		return err
	}
	if err := writeRecord(s.Dir, nil, st); err != nil {
		return fmt.Errorf("sandbox %s: %w", s.Meta.ID, err)
	}
	s.status = st
	return nil
}

// NameKey is the unique name of a sandbox, as kubelet composes it.
func SandboxNameKey(md *runtimeapi.PodSandboxMetadata) string {
	return fmt.Sprintf("%s_%s_%s_%d", md.GetName(), md.GetNamespace(), md.GetUid(), md.GetAttempt())
}
