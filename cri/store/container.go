package store

import (
	"fmt"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerMeta is fixed when the container is created.
type ContainerMeta struct {
	Version   int                                    `json:"version"`
	ID        string                                 `json:"id"`
	SandboxID string                                 `json:"sandboxId"`
	Config    protoJSON[*runtimeapi.ContainerConfig] `json:"config"`
	ImageID   string                                 `json:"imageId"`
	DiffIDs   []string                               `json:"diffIds"` // layers the rootfs is mounted from
	CreatedAt int64                                  `json:"createdAt"`
	LogPath   string                                 `json:"logPath,omitempty"` // absolute
	// StopSignal is the image's stop signal, resolved at creation.
	StopSignal  int    `json:"stopSignal"`
	CgroupsPath string `json:"cgroupsPath"`
	// User is who the container's process runs as, as resolved at creation.
	User User `json:"user"`
	// ImageVolumes are the images mounted read-only into the container
	// (CRI mounts with image set), in the order of the config's mounts.
	ImageVolumes []ImageVolume `json:"imageVolumes,omitempty"`
}

// ImageVolume is an image mounted into a container: an overlay of its
// layers at Dir/rootfs, bound at ContainerPath.
type ImageVolume struct {
	Mount         int      `json:"mount"` // index in the config's mounts
	ContainerPath string   `json:"containerPath"`
	ImageID       string   `json:"imageId"`
	DiffIDs       []string `json:"diffIds"` // layers the overlay is mounted from
	Dir           string   `json:"dir"`     // absolute; UnmountRootfs undoes it
}

// User is a process identity.
type User struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

// ContainerStatus changes over the container's life.
type ContainerStatus struct {
	State      ContainerState `json:"state"`
	Pid        int            `json:"pid,omitempty"`
	StartedAt  int64          `json:"startedAt,omitempty"`
	FinishedAt int64          `json:"finishedAt,omitempty"`
	ExitCode   int32          `json:"exitCode"`
	Reason     string         `json:"reason,omitempty"`
	Message    string         `json:"message,omitempty"`
}

// Reasons reported for exited containers, as kubelet and containerd use them.
const (
	ReasonCompleted  = "Completed"
	ReasonError      = "Error"
	ReasonOOMKilled  = "OOMKilled"
	ReasonStartError = "StartError"
	// ReasonShimLost: the shim died, so nobody could collect the exit.
	ReasonShimLost = "ShimLost"
)

// Container is one container record. Meta is immutable; the status is
// reached through the methods.
type Container struct {
	Meta ContainerMeta
	Dir  string // record directory, also the runc bundle

	mu     sync.Mutex
	status ContainerStatus
}

// NewContainer returns a container record for dir; nothing is written yet.
func NewContainer(dir string, meta ContainerMeta) *Container {
	meta.Version = Version
	return &Container{Meta: meta, Dir: dir}
}

// Config is the container's CRI configuration. Callers must not modify it.
func (c *Container) Config() *runtimeapi.ContainerConfig { return c.Meta.Config.Msg }

// Commit writes meta and status.
func (c *Container) Commit(status ContainerStatus) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := writeRecord(c.Dir, c.Meta, status); err != nil {
		return fmt.Errorf("container %s: %w", c.Meta.ID, err)
	}
	c.status = status
	return nil
}

// Status returns the current status, with an exit the shim recorded
// applied (and persisted) first.
func (c *Container) Status() ContainerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status.State != ContainerRunning {
		return c.status
	}
	exit, err := readExit(c.Dir)
	if err != nil || exit == nil {
		return c.status
	}
	st := c.status
	st.State = ContainerExited
	st.ExitCode = int32(exit.Code)
	st.FinishedAt = exit.FinishedAt.UnixNano()
	switch {
	case exit.OOMKilled:
		st.Reason = ReasonOOMKilled
	case exit.Code == 0:
		st.Reason = ReasonCompleted
	default:
		st.Reason = ReasonError
	}
	if err := writeRecord(c.Dir, nil, st); err == nil {
		c.status = st
	}
	return st
}

// Update changes the status with fn, checking the state transition, and
// writes it. fn's error aborts.
func (c *Container) Update(fn func(*ContainerStatus) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.status
	if err := fn(&st); err != nil {
		return err
	}
	if st.State != c.status.State {
		if err := c.status.State.Transition(st.State); err != nil {
			return fmt.Errorf("container %s: %w", c.Meta.ID, err)
		}
	}
	if err := writeRecord(c.Dir, nil, st); err != nil {
		return fmt.Errorf("container %s: %w", c.Meta.ID, err)
	}
	c.status = st
	return nil
}

// ContainerNameKey is the unique name of a container within its sandbox.
func ContainerNameKey(sandboxID string, md *runtimeapi.ContainerMetadata) string {
	return fmt.Sprintf("%s_%d@%s", md.GetName(), md.GetAttempt(), sandboxID)
}
