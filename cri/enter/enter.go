package enter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cri/errdefs"
)

// ErrSetup marks a failure to enter the container, before the command
// ran: the caller may run it through runc instead.
var ErrSetup = errors.New("berth-exec could not enter the container")

// Helper runs processes in running containers with berth-exec.
type Helper struct {
	Binary string // berth-exec

	mu     sync.Mutex
	mounts []hierarchy
}

// Container is the running container to enter.
type Container struct {
	ID string
	// Pid is its init process.
	Pid int
	// CgroupDir is its cgroup, relative to each hierarchy's root.
	CgroupDir string
	Spec      *specs.Spec
}

// IO is the process's standard streams; nil reads empty or discards.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// nsFlags are the namespaces an exec joins: all of them but the user and
// time namespaces, which Unsupported leaves to runc.
const nsFlags = unix.CLONE_NEWNS | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS |
	unix.CLONE_NEWPID | unix.CLONE_NEWCGROUP

// Run runs proc in c and returns its exit code, as runc.Runc.Exec does: a
// timeout (if > 0, counted from the start) or the end of ctx kills the
// process and answers DeadlineExceeded; a command that cannot be found
// or executed is an error naming it. Unsupported(c.Spec, proc) must be
// nil. Errors wrapping ErrSetup mean the command did not run.
func (h *Helper) Run(ctx context.Context, c Container, proc *specs.Process, stdio IO, timeout time.Duration) (int, error) {
	pidfd, err := unix.PidfdOpen(c.Pid, 0)
	if err != nil {
		return 0, fmt.Errorf("%w %s: pidfd of pid %d: %v", ErrSetup, c.ID, c.Pid, err)
	}
	pidfdFile := os.NewFile(uintptr(pidfd), "pidfd")
	defer pidfdFile.Close()
	// Read after the pidfd is held: a pid reused since would not be in
	// the container's cgroup.
	cgroups, err := h.cgroupFiles(c)
	if err != nil {
		return 0, fmt.Errorf("%w %s: %v", ErrSetup, c.ID, err)
	}
	cfg, err := encode(target{id: c.ID, pidfd: 5, pid: c.Pid, nsFlags: nsFlags, cgroups: cgroups}, c.Spec, proc)
	if err != nil {
		return 0, fmt.Errorf("%w %s: %v", ErrSetup, c.ID, err)
	}
	cfgFile, err := memfd(cfg)
	if err != nil {
		return 0, fmt.Errorf("%w %s: %v", ErrSetup, c.ID, err)
	}
	defer cfgFile.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("%w %s: %v", ErrSetup, c.ID, err)
	}
	defer errR.Close()

	cmd := exec.Command(h.Binary)
	cmd.Stdout, cmd.Stderr = stdio.Stdout, stdio.Stderr
	if stdio.Stdin == nil {
		// An empty pipe rather than /dev/null, as runc gives: the
		// command's user owns it, like its other streams.
		r, w, err := os.Pipe()
		if err != nil {
			errW.Close()
			return 0, fmt.Errorf("%w %s: %v", ErrSetup, c.ID, err)
		}
		w.Close()
		defer r.Close()
		cmd.Stdin = r
	}
	cmd.ExtraFiles = []*os.File{cfgFile, errW, pidfdFile} // fds 3, 4, 5
	// If berthd dies, the helper dies, and with it the command.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// A background child of the command may keep the output open; the
	// exec is over when the command is.
	cmd.WaitDelay = time.Second
	var stdin io.WriteCloser
	if stdio.Stdin != nil {
		// Our own copy, not exec.Cmd's: Wait would wait for a copy that
		// blocks reading a client who has nothing more to say.
		if stdin, err = cmd.StdinPipe(); err != nil {
			errW.Close()
			return 0, fmt.Errorf("%w %s: %v", ErrSetup, c.ID, err)
		}
	}
	err = cmd.Start()
	errW.Close()
	if err != nil {
		return 0, fmt.Errorf("%w %s: %v", ErrSetup, c.ID, err)
	}
	if stdin != nil {
		go func() {
			io.Copy(stdin, stdio.Stdin)
			stdin.Close()
		}()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case err = <-done:
	case <-ctx.Done():
		stop(cmd, done)
		return 0, errdefs.DeadlineExceeded("exec in container %s: command timed out: %v", c.ID, ctx.Err())
	case <-expired:
		stop(cmd, done)
		return 0, errdefs.DeadlineExceeded("exec in container %s: command timed out after %s", c.ID, timeout)
	}
	msg, _ := io.ReadAll(io.LimitReader(errR, 4096))
	if len(msg) > 0 {
		if s := string(msg); strings.HasPrefix(s, "exec: ") {
			return 0, fmt.Errorf("exec in container %s: %s", c.ID, s)
		}
		return 0, fmt.Errorf("%w %s: %s", ErrSetup, c.ID, msg)
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exitErr) && exitErr.Exited():
		return exitErr.ExitCode(), nil
	case errors.Is(err, exec.ErrWaitDelay):
		return cmd.ProcessState.ExitCode(), nil
	}
	return 0, fmt.Errorf("exec in container %s: %v", c.ID, err)
}

// stop asks the helper to kill the command (SIGTERM) and, if it does not
// end at once, kills the helper, whose death kills the command.
func stop(cmd *exec.Cmd, done <-chan error) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// cgroupFiles are the cgroup.procs files of the cgroups c's init is in.
func (h *Helper) cgroupFiles(c Container) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", c.Pid))
	if err != nil {
		return nil, fmt.Errorf("cgroups of pid %d: %w", c.Pid, err)
	}
	h.mu.Lock()
	mounts := h.mounts
	h.mu.Unlock()
	if mounts == nil {
		if mounts, err = readMounts(); err != nil {
			return nil, err
		}
		h.mu.Lock()
		h.mounts = mounts
		h.mu.Unlock()
	}
	return procsFiles(data, mounts, c.CgroupDir)
}

// memfd is an anonymous file holding data, for the helper to read.
func memfd(data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("berth-exec", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "berth-exec-config")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("memfd: %w", err)
	}
	return f, nil
}
