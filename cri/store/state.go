package store

import (
	"fmt"

	"github.com/berth-project/berth/cri/errdefs"
)

// ContainerState is where a container is in its life:
//
//	          start            exit / kill
//	created ─────────► running ───────────► exited
//	   │                  │                   ▲
//	   │ start fails      │ shim lost         │
//	   └──────────────────┴───────────────────┘
//
// Removal is not a state: a removed container has no record. Unknown is
// only reported, for a record whose state cannot be read.
type ContainerState int

const (
	ContainerCreated ContainerState = iota
	ContainerRunning
	ContainerExited
	ContainerUnknown
)

func (s ContainerState) String() string {
	switch s {
	case ContainerCreated:
		return "created"
	case ContainerRunning:
		return "running"
	case ContainerExited:
		return "exited"
	}
	return "unknown"
}

// Transition checks that a container may move from s to next.
func (s ContainerState) Transition(next ContainerState) error {
	ok := false
	switch s {
	case ContainerCreated:
		ok = next == ContainerRunning || next == ContainerExited
	case ContainerRunning:
		ok = next == ContainerExited
	}
	if !ok {
		return errdefs.FailedPrecondition("container is %s, cannot become %s", s, next)
	}
	return nil
}

// SandboxState is where a sandbox is in its life:
//
//	        stop, or pause process exits
//	ready ──────────────────────────────► notready
type SandboxState int

const (
	SandboxReady SandboxState = iota
	SandboxNotReady
)

func (s SandboxState) String() string {
	if s == SandboxReady {
		return "ready"
	}
	return "notready"
}

// MarshalText and UnmarshalText keep the state names readable on disk.
func (s ContainerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *ContainerState) UnmarshalText(b []byte) error {
	for _, c := range []ContainerState{ContainerCreated, ContainerRunning, ContainerExited, ContainerUnknown} {
		if c.String() == string(b) {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("unknown container state %q", b)
}

func (s SandboxState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *SandboxState) UnmarshalText(b []byte) error {
	switch string(b) {
	case "ready":
		*s = SandboxReady
	case "notready":
		*s = SandboxNotReady
	default:
		return fmt.Errorf("unknown sandbox state %q", b)
	}
	return nil
}
