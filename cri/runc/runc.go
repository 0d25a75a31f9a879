// Package runc drives the runc binary through its CLI. It is the only place
// that knows runc's flags, its JSON log format and how its failures read;
// everything else sees classified errors (cri/errdefs).
package runc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-project/berth/cri/errdefs"
)

// Runc is one runc binary with its state root. The zero value is not usable.
type Runc struct {
	Binary        string // path of the runc binary
	Root          string // runc --root: where runc keeps container state
	SystemdCgroup bool   // pass --systemd-cgroup
}

// State is the subset of `runc state` berth uses.
type State struct {
	ID      string    `json:"id"`
	Pid     int       `json:"pid"`
	Status  string    `json:"status"` // creating, created, running, paused, stopped
	Bundle  string    `json:"bundle"`
	Created time.Time `json:"created"`
}

// Command returns a runc command with berth's global flags. runc's own log
// goes to logFile, or to stderr when logFile is empty; verbs whose stderr
// belongs to the container's process need a logFile. The caller owns the
// returned command: it sets stdio and runs it.
func (r *Runc) Command(ctx context.Context, logFile string, args ...string) *exec.Cmd {
	global := []string{"--root", r.Root, "--log-format", "json"}
	if logFile != "" {
		global = append(global, "--log", logFile)
	}
	if r.SystemdCgroup {
		global = append(global, "--systemd-cgroup")
	}
	cmd := exec.CommandContext(ctx, r.Binary, append(global, args...)...)
	cmd.Env = childEnv()
	return cmd
}

// childEnv is our environment without NOTIFY_SOCKET: runc would otherwise
// hand systemd's notify socket to the container and systemd would take the
// container's readiness for ours.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			env = append(env, kv)
		}
	}
	return env
}

// run runs a short runc command and classifies its failure.
func (r *Runc) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := r.Command(ctx, "", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, Classify(args[0], stderr.Bytes(), err)
	}
	return stdout.Bytes(), nil
}

// Kill sends sig to the container's init process, or to all its processes.
func (r *Runc) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	_, err := r.run(ctx, append(args, id, strconv.Itoa(int(sig)))...)
	return err
}

// Delete removes the container's runc state and cgroup, killing it first
// when force is set. A container runc does not know is not an error.
//
// A plain delete is tried first even when force is set: on a stopped
// container, runc's --force path costs about 100 ms more (measured with
// runc 1.5 on cgroup v1), and stopped is the common case.
func (r *Runc) Delete(ctx context.Context, id string, force bool) error {
	_, err := r.run(ctx, "delete", id)
	if err != nil && force && !errors.Is(err, errdefs.ErrNotFound) {
		_, err = r.run(ctx, "delete", "--force", id)
	}
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// State returns runc's view of the container.
func (r *Runc) State(ctx context.Context, id string) (State, error) {
	out, err := r.run(ctx, "state", id)
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(out, &st); err != nil {
		return State{}, fmt.Errorf("runc state %s: %w", id, err)
	}
	return st, nil
}

// Update applies new resources (an OCI LinuxResources JSON) to a container.
func (r *Runc) Update(ctx context.Context, id string, resourcesJSON []byte) error {
	cmd := r.Command(ctx, "", "update", "--resources", "-", id)
	cmd.Stdin = bytes.NewReader(resourcesJSON)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return Classify("update", stderr.Bytes(), err)
	}
	return nil
}

// Classify turns a failed runc invocation into an error naming the verb,
// carrying runc's own message and the right class.
func Classify(verb string, stderr []byte, err error) error {
	msg := message(stderr)
	if msg == "" {
		msg = err.Error()
	}
	switch {
	case strings.Contains(msg, "does not exist") || strings.Contains(msg, "container not found"):
		return errdefs.NotFound("runc %s: %s", verb, msg)
	case strings.Contains(msg, "cannot start a container that has stopped"),
		strings.Contains(msg, "not running"),
		strings.Contains(msg, "cannot start an already running container"):
		return errdefs.FailedPrecondition("runc %s: %s", verb, msg)
	case errors.Is(err, context.DeadlineExceeded):
		return errdefs.DeadlineExceeded("runc %s: %s", verb, msg)
	}
	return fmt.Errorf("runc %s: %s", verb, msg)
}

// message extracts the last error message from runc's JSON log lines on
// stderr, falling back to the raw text.
func message(stderr []byte) string {
	var last string
	for _, line := range bytes.Split(bytes.TrimSpace(stderr), []byte("\n")) {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(line, &entry) == nil && entry.Msg != "" {
			if entry.Level == "error" || entry.Level == "fatal" || last == "" {
				last = entry.Msg
			}
			continue
		}
		if s := strings.TrimSpace(string(line)); s != "" {
			last = s
		}
	}
	return last
}
