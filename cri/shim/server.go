package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/berth-project/berth/cri/errdefs"
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

	mu    sync.Mutex
	exits map[int]func(unix.WaitStatus) // what to do when a pid we wait for exits: container inits and exec'd processes
	byID  map[string]*container
	early map[int]unix.WaitStatus // exits seen before their pid was registered
	// starting are the runs in flight, each closed once its container is
	// in byID or its run failed: a wait that comes first (berthd,
	// restarted while its StartContainer waited) waits for it.
	starting map[string]chan struct{}
	stop     chan struct{}
}

// container is one container created by this shim.
type container struct {
	id        string
	pid       int
	exitFile  string
	oom       *oomWatch
	log       *crilog.Writer
	output    sync.WaitGroup // the stdout/stderr (or terminal) copiers
	fan       fanout         // live output to attached clients
	console   *os.File       // terminal master of a tty container
	stdinOnce bool
	exited    chan struct{} // closed once exit is set and recorded

	// Guarded by Server.mu.
	logFile *crilog.File
	stdin   *os.File // the stdin pipe's write end or the console; nil if none (left)
	exit    Exit
}

// NewServer returns a shim server that creates containers with r.
func NewServer(r *runc.Runc, log *slog.Logger) *Server {
	s := &Server{
		runc:  r,
		log:   log,
		exits: map[int]func(unix.WaitStatus){},
		byID:  map[string]*container{},
		early: map[int]unix.WaitStatus{},

		starting: map[string]chan struct{}{},
		stop:     make(chan struct{}),
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
	// The request is one line; after it, attach and exec sessions read
	// frames from the same buffered reader.
	br := bufio.NewReader(conn)
	var req Request
	line, err := br.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	if err != nil {
		writeResponse(conn, Response{Error: "bad request: " + err.Error()})
		return
	}
	var resp Response
	switch req.Op {
	case OpRun:
		pid, err := s.run(req)
		resp = errorResponse(err)
		// A container that fails to start is the runtime's failure,
		// whatever runc's message resembles.
		resp.Class = ""
		resp.Pid = pid
	case OpWait:
		exit, err := s.wait(conn, req.ID)
		resp = errorResponse(err)
		resp.Exit = exit
	case OpForget:
		s.forget(req.ID)
	case OpAttach:
		s.attach(conn, br, req)
		return
	case OpExec:
		s.exec(conn, br, req)
		return
	case OpReopenLog:
		resp = errorResponse(s.reopenLog(req.ID))
	case OpLogStats:
		dropped, err := s.logDropped(req.ID)
		resp = errorResponse(err)
		resp.LogDropped = dropped
	case OpShutdown:
		writeResponse(conn, Response{})
		close(s.stop)
		return
	default:
		resp.Error = fmt.Sprintf("unknown op %q", req.Op)
	}
	writeResponse(conn, resp)
}

func writeResponse(conn net.Conn, resp Response) error {
	data, _ := json.Marshal(resp)
	_, err := conn.Write(append(data, '\n'))
	return err
}

// errorResponse carries err and its class, so that the client can classify
// it again.
func errorResponse(err error) Response {
	if err == nil {
		return Response{}
	}
	resp := Response{Error: err.Error()}
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		resp.Class = classNotFound
	case errors.Is(err, errdefs.ErrFailedPrecondition):
		resp.Class = classFailedPrecondition
	case errors.Is(err, errdefs.ErrInvalidArgument):
		resp.Class = classInvalidArgument
	}
	return resp
}

// Error classes on the wire.
const (
	classNotFound           = "NotFound"
	classFailedPrecondition = "FailedPrecondition"
	classInvalidArgument    = "InvalidArgument"
)

// container returns a container this shim created that is still running.
func (s *Server) container(id string) (*container, error) {
	s.mu.Lock()
	c, ok := s.byID[id]
	s.mu.Unlock()
	if !ok {
		return nil, errdefs.NotFound("container %s: not created by this shim", id)
	}
	if c.exitedNow() {
		return nil, errdefs.FailedPrecondition("container %s has exited", id)
	}
	return c, nil
}

// forget drops an exited container's record and closes its log.
func (s *Server) forget(id string) {
	s.mu.Lock()
	c, ok := s.byID[id]
	if !ok || !c.exitedNow() {
		s.mu.Unlock()
		return
	}
	delete(s.byID, id)
	f := c.logFile
	c.logFile = nil
	s.mu.Unlock()
	if f != nil {
		f.Close()
	}
}

// run runs `runc run --detach` with the shim as the parent of the
// container's init process and the holder of its stdio. One runc process
// creates and starts the container: berth never needs the two apart, and
// every runc invocation costs a process start.
func (s *Server) run(req Request) (int, error) {
	if req.ID == "" || req.Bundle == "" || req.ExitFile == "" {
		return 0, errors.New("run needs id, bundle and exitFile")
	}
	c := &container{id: req.ID, exitFile: req.ExitFile, oom: newOOMWatch(req.OOMFiles),
		stdinOnce: req.StdinOnce, exited: make(chan struct{})}
	done := make(chan struct{})
	s.mu.Lock()
	s.starting[req.ID] = done
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.starting, req.ID)
		s.mu.Unlock()
		close(done)
	}()
	if req.LogPath != "" {
		f, err := crilog.OpenFile(req.LogPath, req.LogMaxSize, req.LogMaxFiles, nil)
		if err != nil {
			return 0, fmt.Errorf("open log %s: %w", req.LogPath, err)
		}
		c.logFile = f
	}
	pid, err := s.runcRun(c, req)
	if err != nil {
		if c.logFile != nil {
			c.logFile.Close()
		}
		// runc may have made the container, or started it, before it
		// failed (killed half-way): none may outlive the failure, also
		// when berthd, which would remove it, is not there to hear of it.
		if derr := s.runc.Delete(context.Background(), req.ID, true); derr != nil {
			err = fmt.Errorf("%w (and removing what runc left: %v)", err, derr)
		}
		return 0, err
	}
	return pid, nil
}

func (s *Server) runcRun(c *container, req Request) (int, error) {
	stdio, err := newStartIO(req.Stdin, req.Tty)
	if err != nil {
		return 0, err
	}
	defer stdio.close()
	pidFile := filepath.Join(req.Bundle, "init.pid")
	runcLog := filepath.Join(req.Bundle, "runc-run.log")
	args := []string{"run", "--detach", "--bundle", req.Bundle, "--pid-file", pidFile}
	if stdio.console != nil {
		args = append(args, "--console-socket", stdio.console.Path())
	}
	cmd := s.runc.Command(context.Background(), runcLog, append(args, c.id)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.runcStdin, stdio.runcStdout, stdio.runcStderr
	err = s.reaper.startCmd(cmd)
	if err == nil {
		err = s.reaper.waitCmd(cmd)
	}
	// The container now holds its ends; ours must go so that EOF arrives
	// when the container's last writer exits.
	stdio.closeRuncEnds()
	if err != nil {
		msg, _ := os.ReadFile(runcLog)
		return 0, runc.Classify("run", msg, err)
	}
	if stdio.console != nil {
		if stdio.master, err = stdio.console.Receive(time.Now().Add(consoleTimeout)); err != nil {
			return 0, err
		}
	}
	pid, err := readPid(pidFile)
	if err != nil {
		return 0, err
	}
	c.pid = pid
	c.oom.start()
	c.log = crilog.NewWriter(nil, nil)
	if c.logFile != nil {
		c.log.SetOutput(c.logFile)
	}
	// From here on the container owns what stdio holds.
	if stdio.master != nil {
		c.console = stdio.master
		if req.Stdin {
			c.stdin = stdio.master
		}
		c.output.Add(1)
		go func(r io.Reader) { defer c.output.Done(); c.log.Copy("stdout", teeOutput{r, &c.fan, frameStdout}) }(stdio.master)
	} else {
		c.stdin = stdio.stdinW
		c.output.Add(2)
		go func(r io.ReadCloser) {
			defer c.output.Done()
			defer r.Close()
			c.log.Copy("stdout", teeOutput{r, &c.fan, frameStdout})
		}(stdio.outR)
		go func(r io.ReadCloser) {
			defer c.output.Done()
			defer r.Close()
			c.log.Copy("stderr", teeOutput{r, &c.fan, frameStderr})
		}(stdio.errR)
	}
	stdio.release()

	s.mu.Lock()
	s.byID[c.id] = c
	s.mu.Unlock()
	s.watch(pid, func(status unix.WaitStatus) { s.finish(c, status) })
	return pid, nil
}

// consoleTimeout bounds the wait for runc's terminal master; runc has
// sent it before it returns, so it is only there not to hang on a bug.
const consoleTimeout = 10 * time.Second

// watch calls exited (in a new goroutine) once pid has exited, also if
// it already has.
func (s *Server) watch(pid int, exited func(unix.WaitStatus)) {
	s.mu.Lock()
	status, dead := s.early[pid]
	delete(s.early, pid)
	if !dead {
		s.exits[pid] = exited
	}
	s.mu.Unlock()
	if dead {
		go exited(status)
	}
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
	exited, ok := s.exits[pid]
	if !ok {
		// Either an orphan of a host-PID container (nothing to do), or an
		// init or exec'd process whose start is still being processed.
		if len(s.early) < 1024 {
			s.early[pid] = status
		}
		s.mu.Unlock()
		return
	}
	delete(s.exits, pid)
	s.mu.Unlock()
	go exited(status)
}

// finish records a container's exit: it lets the output drain, reads the
// OOM counters, writes the exit file and then wakes the waiters.
func (s *Server) finish(c *container, status unix.WaitStatus) {
	exit := exitOf(status)
	exit.OOMKilled = c.oom.done(exit.Signal)
	drained := make(chan struct{})
	go func() { c.output.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
	}
	s.mu.Lock()
	logFile, stdin := c.logFile, c.stdin
	c.stdin = nil
	s.mu.Unlock()
	if stdin != nil && stdin != c.console {
		stdin.Close()
	}
	if c.console != nil {
		c.console.Close() // ends a copier still waiting on a lingering child
	}
	c.fan.close()
	if logFile != nil {
		logFile.Sync()
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

// exitOf turns a wait status into an Exit; death by signal is 128+signal,
// as shells report it.
func exitOf(status unix.WaitStatus) Exit {
	exit := Exit{FinishedAt: time.Now().UTC()}
	if status.Signaled() {
		exit.Signal = int(status.Signal())
		exit.Code = 128 + exit.Signal
	} else {
		exit.Code = status.ExitStatus()
	}
	return exit
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
	gone := make(chan struct{})
	go func() {
		// The client sends nothing more; a read returns when it hangs up.
		var b [1]byte
		conn.Read(b[:])
		close(gone)
	}()
	s.mu.Lock()
	c, ok := s.byID[id]
	pending := s.starting[id]
	s.mu.Unlock()
	if !ok && pending != nil {
		select {
		case <-pending:
		case <-gone:
			return nil, errors.New("client went away")
		}
		s.mu.Lock()
		c, ok = s.byID[id]
		s.mu.Unlock()
	}
	if !ok {
		return nil, errdefs.NotFound("container %s: not created by this shim", id)
	}
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
