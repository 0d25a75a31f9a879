package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-project/berth/cri/errdefs"
)

// LaunchConfig says how to start one shim.
type LaunchConfig struct {
	Binary        string // berth-shim
	Socket        string // unix socket the shim listens on
	LogFile       string // the shim's own log
	RuncBinary    string
	RuncRoot      string
	SystemdCgroup bool
	// Scope, where set, is the systemd scope unit the shim is moved into
	// (scope.go); "" leaves it in berthd's cgroup.
	Scope string
}

// Process identifies a running shim; StartTime guards against pid reuse.
type Process struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"startTime"` // clock ticks since boot, from /proc/<pid>/stat
	Socket    string `json:"socket"`
}

// Launch starts a shim in its own session, so that it outlives berthd and
// ignores signals sent to berthd's process group, and returns once the
// shim accepts requests.
func Launch(ctx context.Context, cfg LaunchConfig) (Process, error) {
	logf, err := os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return Process{}, fmt.Errorf("shim log: %w", err)
	}
	defer logf.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return Process{}, err
	}
	defer readyR.Close()
	args := []string{"--socket", cfg.Socket, "--runc", cfg.RuncBinary, "--runc-root", cfg.RuncRoot}
	if cfg.SystemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	cmd := exec.Command(cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{readyW} // fd 3: closed by the shim once it listens
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/" // never pin a directory berthd may unmount
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	if err := cmd.Start(); err != nil {
		readyW.Close()
		return Process{}, fmt.Errorf("start shim: %w", err)
	}
	readyW.Close()
	// While berthd lives it is the shim's parent and must reap it.
	go cmd.Wait()
	if cfg.Scope != "" {
		if err := moveToScope(ctx, cfg.Scope, cmd.Process.Pid); err != nil {
			cmd.Process.Kill()
			return Process{}, fmt.Errorf("start shim: %w", err)
		}
	}

	ready := make(chan error, 1)
	go func() {
		msg, err := io.ReadAll(readyR)
		if err == nil && strings.TrimSpace(string(msg)) != "ok" {
			err = fmt.Errorf("shim failed to start: %s", strings.TrimSpace(string(msg)))
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		cmd.Process.Kill()
		return Process{}, fmt.Errorf("start shim (log %s): %w", cfg.LogFile, err)
	}
	start, err := processStartTime(cmd.Process.Pid)
	if err != nil {
		return Process{}, err
	}
	return Process{Pid: cmd.Process.Pid, StartTime: start, Socket: cfg.Socket}, nil
}

// Alive reports whether the shim process still runs (and is still the
// same process, not a reused pid). A zombie is dead.
func (p Process) Alive() bool {
	if p.Pid <= 0 {
		return false
	}
	fields, err := procStat(p.Pid)
	if err != nil || fields[0] == "Z" || fields[0] == "X" {
		return false
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	return err == nil && start == p.StartTime
}

// processStartTime reads field 22 of /proc/<pid>/stat.
func processStartTime(pid int) (uint64, error) {
	fields, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// procStat returns the fields of /proc/<pid>/stat from field 3 (state)
// on. The command name in field 2 may hold spaces and parentheses, so
// fields are counted from the last ')'.
func procStat(pid int) ([]string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return nil, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return fields, nil
}

// call sends one request and reads the response.
func call(ctx context.Context, socket string, req Request) (Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return Response{}, errdefs.Unavailable("shim %s: %v", socket, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	data, _ := json.Marshal(req)
	if _, err := conn.Write(append(data, '\n')); err != nil {
		return Response{}, errdefs.Unavailable("shim %s: %v", socket, err)
	}
	var resp Response
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&resp); err != nil {
		if ctx.Err() != nil {
			return Response{}, ctx.Err()
		}
		if errors.Is(err, io.EOF) && req.Op == OpShutdown {
			return Response{}, nil
		}
		return Response{}, errdefs.Unavailable("shim %s: %v", socket, err)
	}
	if err := resp.err(); err != nil {
		return resp, err
	}
	return resp, nil
}

// err is the response's error, classified again as the shim classified it.
func (r Response) err() error {
	switch {
	case r.Error == "":
		return nil
	case r.Class == classNotFound:
		return errdefs.NotFound("%s", r.Error)
	case r.Class == classFailedPrecondition:
		return errdefs.FailedPrecondition("%s", r.Error)
	case r.Class == classInvalidArgument:
		return errdefs.InvalidArgument("%s", r.Error)
	}
	return errors.New(r.Error)
}

// Run asks the shim to create and start a container; it returns the init
// pid.
func Run(ctx context.Context, socket string, req Request) (int, error) {
	req.Op = OpRun
	resp, err := call(ctx, socket, req)
	return resp.Pid, err
}

// Wait blocks until the container exits or ctx ends.
func Wait(ctx context.Context, socket, id string) (Exit, error) {
	resp, err := call(ctx, socket, Request{Op: OpWait, ID: id})
	if err != nil {
		return Exit{}, err
	}
	return *resp.Exit, nil
}

// Forget lets the shim drop what it keeps about an exited container.
func Forget(ctx context.Context, socket, id string) error {
	_, err := call(ctx, socket, Request{Op: OpForget, ID: id})
	return err
}

// ReopenLog has the shim reopen the container's log file at its path.
func ReopenLog(ctx context.Context, socket, id string) error {
	_, err := call(ctx, socket, Request{Op: OpReopenLog, ID: id})
	return err
}

// LogDropped asks how many of the container's log records were dropped.
func LogDropped(ctx context.Context, socket, id string) (uint64, error) {
	resp, err := call(ctx, socket, Request{Op: OpLogStats, ID: id})
	return resp.LogDropped, err
}

// Shutdown asks the shim to exit.
func Shutdown(ctx context.Context, socket string) error {
	_, err := call(ctx, socket, Request{Op: OpShutdown})
	return err
}
