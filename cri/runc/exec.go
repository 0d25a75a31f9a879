package runc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cri/errdefs"
)

// ExecIO is an exec'd process's standard streams. A nil Stdin reads as
// empty; nil writers discard.
type ExecIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Exec runs process inside container id with its streams connected to
// stdio, and returns its exit code. When ctx ends first, or the process
// has run for longer than timeout (if > 0; counted from when it started,
// not from when runc did, as containerd counts it, so a busy machine does
// not fail quick commands), the process in the container is killed (not
// only runc) and a DeadlineExceeded error is returned. scratch is a
// private directory for the process spec, the pid file and runc's own
// log. The process must not ask for a terminal: runc hands a terminal only
// to a caller that detaches (see ConsoleSocket).
func (r *Runc) Exec(ctx context.Context, id string, process *specs.Process, scratch string, stdio ExecIO, timeout time.Duration) (int, error) {
	data, err := json.Marshal(process)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	procFile := filepath.Join(scratch, "process.json")
	pidFile := filepath.Join(scratch, "exec.pid")
	logFile := filepath.Join(scratch, "runc.log")
	if err := os.WriteFile(procFile, data, 0o600); err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	// Not bound to ctx: on timeout we kill the process in the container and
	// runc then returns by itself, so no pipe is left held open.
	cmd := r.Command(context.Background(), logFile, "exec", "--process", procFile, "--pid-file", pidFile, id)
	cmd.Stdout, cmd.Stderr = stdio.Stdout, stdio.Stderr
	// A background child of the process may keep the output pipes open;
	// the exec is over when the process is.
	cmd.WaitDelay = time.Second
	var stdin io.WriteCloser
	if stdio.Stdin != nil {
		// Our own copy, not exec.Cmd's: Wait would wait for a copy that
		// blocks reading a client who has nothing more to say.
		if stdin, err = cmd.StdinPipe(); err != nil {
			return 0, fmt.Errorf("exec in %s: %w", id, err)
		}
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	if stdin != nil {
		go func() {
			io.Copy(stdin, stdio.Stdin)
			stdin.Close()
		}()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var expired <-chan struct{}
	if timeout > 0 {
		stop := make(chan struct{})
		defer close(stop)
		expired = afterStart(pidFile, stop, timeout)
	}
	var waitErr error
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		killExecProcess(pidFile, done, cmd.Process)
		return 0, errdefs.DeadlineExceeded("exec in container %s: command timed out: %v", id, ctx.Err())
	case <-expired:
		killExecProcess(pidFile, done, cmd.Process)
		return 0, errdefs.DeadlineExceeded("exec in container %s: command timed out after %s", id, timeout)
	}
	if waitErr == nil {
		return 0, nil
	}
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) {
		if _, statErr := os.Stat(pidFile); statErr == nil {
			// The process ran: runc exec passes on its exit status.
			return exitErr.ExitCode(), nil
		}
	}
	log, _ := os.ReadFile(logFile)
	return 0, Classify("exec", log, waitErr)
}

// afterStart fires timeout after the exec'd process started, which is when
// runc has written its pid file, unless stop closes first.
func afterStart(pidFile string, stop <-chan struct{}, timeout time.Duration) <-chan struct{} {
	fire := make(chan struct{})
	go func() {
		// runc writes the pid file within milliseconds, or seconds on a
		// loaded machine: look often at first, then less.
		poll := time.Millisecond
		for {
			if _, err := os.Stat(pidFile); err == nil {
				break
			}
			select {
			case <-stop:
				return
			case <-time.After(poll):
			}
			poll = min(poll*2, 20*time.Millisecond)
		}
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-stop:
		case <-t.C:
			close(fire)
		}
	}()
	return fire
}

// killExecProcess kills the exec'd process by the pid runc recorded, then
// gives runc a moment to return. runc does not return while a background
// child of the process still holds the output open, so after that moment
// runc itself is killed: a timeout must end the call on time.
func killExecProcess(pidFile string, done <-chan error, runc *os.Process) {
	deadline := time.After(time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if data, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		select {
		case <-done:
			return
		case <-deadline:
			runc.Kill()
			return
		case <-tick.C:
		}
	}
}
