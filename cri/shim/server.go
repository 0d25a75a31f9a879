package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cri/atomicfile"
	"github.com/berth-project/berth/cri/crilog"
	"github.com/berth-project/berth/cri/runc"
)

// drainTimeout bounds how long an exit waits for the container's output
// to reach EOF: a background child that inherited stdout must not delay
// the exit being recorded forever.
const drainTimeout = 2 * time.Second

// Server is the shim's side: it owns the containers it created.
type Server struct {
	runc   *runc.Runc
	reaper *reaper
	log    *slog.Logger

	mu         sync.Mutex
	containers map[int]*container // by init pid
	byID       map[string]*container
	early      map[int]unix.WaitStatus // exits seen before the container was registered
	stop       chan struct{}
}

// container is one container created by this shim.
type container struct {
	id       string
	pid      int
	exitFile string
	oomFiles []string
	output   sync.WaitGroup // the stdout/stderr copiers
	logFile  *os.File
	exited   chan struct{} // closed once exit is set and recorded
	exit     Exit
}

// NewServer returns a shim server that creates containers with r.
func NewServer(r *runc.Runc, log *slog.Logger) *Server {
	s := &Server{
		runc:       r,
		log:        log,
		containers: map[int]*container{},
		byID:       map[string]*container{},
		early:      map[int]unix.WaitStatus{},
		stop:       make(chan struct{}),
	}
	s.reaper = newReaper(s.onExit)
	return s
}

// Serve makes the shim a subreaper and answers requests on l until a
// shutdown request.
func (s *Server) Serve(l net.Listener) error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	go s.reaper.run()
	go func() {
		<-s.stop
		l.Close()
	}()
	for {
		conn, err := l.Accept()
		if err != nil {
			select {
			case <-s.stop:
				return nil
			default:
				return fmt.Errorf("accept: %w", err)
			}
		}
		go s.handle(conn)
	}
}

func (s *Server) handle(conn net.Conn) {
	defer conn.Close()
	var req Request
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&req); err != nil {
		writeResponse(conn, Response{Error: "bad request: " + err.Error()})
		return
	}
	var resp Response
	switch req.Op {
	case OpRun:
		pid, err := s.run(req)
		resp = Response{Pid: pid}
		if err != nil {
			resp.Error = err.Error()
		}
	case OpWait:
		exit, err := s.wait(conn, req.ID)
		resp = Response{Exit: exit}
		if err != nil {
			resp.Error = err.Error()
		}
	case OpForget:
		s.mu.Lock()
		if c, ok := s.byID[req.ID]; ok && c.exitedNow() {
			delete(s.byID, req.ID)
		}
		s.mu.Unlock()
	case OpShutdown:
		writeResponse(conn, Response{})
		close(s.stop)
		return
	default:
		resp.Error = fmt.Sprintf("unknown op %q", req.Op)
	}
	writeResponse(conn, resp)
}

func writeResponse(conn net.Conn, resp Response) {
	data, _ := json.Marshal(resp)
	conn.Write(append(data, '\n'))
}

// run runs `runc run --detach` with the shim as the parent of the
// container's init process and the holder of its stdio. One runc process
// creates and starts the container: berth never needs the two apart, and
// every runc invocation costs a process start.
func (s *Server) run(req Request) (int, error) {
	if req.ID == "" || req.Bundle == "" || req.ExitFile == "" {
		return 0, errors.New("run needs id, bundle and exitFile")
	}
	c := &container{id: req.ID, exitFile: req.ExitFile, oomFiles: req.OOMFiles, exited: make(chan struct{})}
	if req.LogPath != "" {
		f, err := os.OpenFile(req.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return 0, fmt.Errorf("open log %s: %w", req.LogPath, err)
		}
		c.logFile = f
	}
	pid, err := s.runcRun(c, req.Bundle)
	if err != nil {
		if c.logFile != nil {
			c.logFile.Close()
		}
		return 0, err
	}
	return pid, nil
}

func (s *Server) runcRun(c *container, bundle string) (int, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return 0, err
	}
	pidFile := filepath.Join(bundle, "init.pid")
	runcLog := filepath.Join(bundle, "runc-run.log")
	cmd := s.runc.Command(context.Background(), runcLog, "run", "--detach", "--bundle", bundle, "--pid-file", pidFile, c.id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, outW, errW
	err = s.reaper.startCmd(cmd)
	if err == nil {
		err = s.reaper.waitCmd(cmd)
	}
	// The container now holds the write ends; ours must go so that EOF
	// arrives when the container's last writer exits.
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		msg, _ := os.ReadFile(runcLog)
		return 0, runc.Classify("run", msg, err)
	}
	pid, err := readPid(pidFile)
	if err != nil {
		outR.Close()
		errR.Close()
		return 0, err
	}
	c.pid = pid
	w := crilog.NewWriter(nil, nil)
	if c.logFile != nil {
		w.SetOutput(c.logFile)
	}
	c.output.Add(2)
	go func() { defer c.output.Done(); defer outR.Close(); w.Copy("stdout", outR) }()
	go func() { defer c.output.Done(); defer errR.Close(); w.Copy("stderr", errR) }()

	s.mu.Lock()
	s.containers[pid] = c
	s.byID[c.id] = c
	status, dead := s.early[pid]
	delete(s.early, pid)
	s.mu.Unlock()
	if dead {
		go s.finish(c, status)
	}
	return pid, nil
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %s: %q", path, data)
	}
	return pid, nil
}

// onExit is called by the reaper for every reaped child it does not own.
func (s *Server) onExit(pid int, status unix.WaitStatus) {
	s.mu.Lock()
	c, ok := s.containers[pid]
	if !ok {
		// Either an orphan of a host-PID container (nothing to do), or an
		// init whose create reply is still being processed.
		if len(s.early) < 1024 {
			s.early[pid] = status
		}
		s.mu.Unlock()
		return
	}
	delete(s.containers, pid)
	s.mu.Unlock()
	go s.finish(c, status)
}

// finish records a container's exit: it lets the output drain, reads the
// OOM counters, writes the exit file and then wakes the waiters.
func (s *Server) finish(c *container, status unix.WaitStatus) {
	exit := Exit{FinishedAt: time.Now().UTC()}
	switch {
	case status.Signaled():
		exit.Signal = int(status.Signal())
		exit.Code = 128 + exit.Signal
	default:
		exit.Code = status.ExitStatus()
	}
	exit.OOMKilled = oomKilled(c.oomFiles)
	drained := make(chan struct{})
	go func() { c.output.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
	}
	if c.logFile != nil {
		c.logFile.Sync()
	}
	if err := atomicfile.WriteJSON(c.exitFile, exit); err != nil {
		s.log.Error("record exit", "container", c.id, "error", err)
	}
	s.mu.Lock()
	c.exit = exit
	s.mu.Unlock()
	close(c.exited)
	s.log.Info("container exited", "container", c.id, "pid", c.pid, "code", exit.Code, "oom", exit.OOMKilled)
}

// oomKilled reports whether any cgroup file shows an OOM kill.
func oomKilled(files []string) bool {
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if n, ok := strings.CutPrefix(line, "oom_kill "); ok && strings.TrimSpace(n) != "0" {
				return true
			}
		}
	}
	return false
}

// exitedNow reports whether the container's exit has been recorded.
func (c *container) exitedNow() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// wait blocks until container id has exited or the caller hangs up.
func (s *Server) wait(conn net.Conn, id string) (*Exit, error) {
	s.mu.Lock()
	c, ok := s.byID[id]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("container %s: not created by this shim", id)
	}
	gone := make(chan struct{})
	go func() {
		// The client sends nothing more; a read returns when it hangs up.
		var b [1]byte
		conn.Read(b[:])
		close(gone)
	}()
	select {
	case <-c.exited:
		s.mu.Lock()
		exit := c.exit
		s.mu.Unlock()
		return &exit, nil
	case <-gone:
		return nil, errors.New("client went away")
	}
}
