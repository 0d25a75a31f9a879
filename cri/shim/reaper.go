package shim

import (
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// reaper collects every child that dies in the shim: container init
// processes (reparented to us because we are a subreaper), orphans of
// host-PID containers, and nothing else. Children started through
// startCmd belong to their exec.Cmd, which reaps them itself; the reaper
// only peeks at those (WNOWAIT) and leaves them alone, so their Wait never
// fails with ECHILD.
type reaper struct {
	mu     sync.Mutex   // held while starting a command, so its pid is registered before it can be seen dead
	cmds   map[int]bool // pids owned by an exec.Cmd
	exits  func(pid int, status unix.WaitStatus)
	signal chan os.Signal
}

func newReaper(exits func(pid int, status unix.WaitStatus)) *reaper {
	r := &reaper{cmds: map[int]bool{}, exits: exits, signal: make(chan os.Signal, 1)}
	signal.Notify(r.signal, syscall.SIGCHLD)
	return r
}

// run reaps on every SIGCHLD; it never returns.
func (r *reaper) run() {
	for range r.signal {
		r.reap()
	}
}

// kick asks for a reaping round, e.g. after a command was waited for and
// may have been hiding other zombies.
func (r *reaper) kick() {
	select {
	case r.signal <- syscall.SIGCHLD:
	default:
	}
}

func (r *reaper) reap() {
	for {
		var info unix.Siginfo
		r.mu.Lock()
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		pid := int(siginfoPid(&info))
		if err != nil || pid == 0 || r.cmds[pid] {
			r.mu.Unlock()
			return
		}
		var status unix.WaitStatus
		_, err = unix.Wait4(pid, &status, unix.WNOHANG, nil)
		r.mu.Unlock()
		if err == nil {
			r.exits(pid, status)
		}
	}
}

// startCmd starts cmd with its pid registered as owned by the command.
func (r *reaper) startCmd(cmd *exec.Cmd) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmds[cmd.Process.Pid] = true
	return nil
}

// waitCmd waits for a command started with startCmd.
func (r *reaper) waitCmd(cmd *exec.Cmd) error {
	err := cmd.Wait()
	r.mu.Lock()
	delete(r.cmds, cmd.Process.Pid)
	r.mu.Unlock()
	r.kick()
	return err
}
