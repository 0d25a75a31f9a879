package shim

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/runc"
)

// execProc is a process started in a container by `runc exec --detach`.
type execProc struct {
	pid    int
	pidfd  int // -1 if it was gone before it could be opened
	master *os.File
	exited chan unix.WaitStatus
}

// exec is one terminal exec session. runc gives a process a terminal only
// when it detaches, and a detached process is reparented to the nearest
// subreaper: the shim. So the shim alone can collect its exit status, and
// such an exec runs here. The terminal's output goes to the client as
// stdout frames, its stdin and resize frames go to the terminal, and the
// session ends with an end frame carrying the exit code. A client that
// goes away takes the process with it.
func (s *Server) exec(conn net.Conn, br *bufio.Reader, req Request) {
	p, err := s.startExec(req)
	if err != nil {
		writeResponse(conn, errorResponse(err))
		return
	}
	defer p.master.Close()
	if p.pidfd >= 0 {
		defer unix.Close(p.pidfd)
	}
	gone := make(chan struct{})
	if err := writeResponse(conn, Response{Pid: p.pid}); err != nil {
		close(gone)
	} else {
		go func() {
			defer close(gone)
			execInput(p, br)
		}()
	}
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		copyFrames(conn, p.master, frameStdout)
	}()
	var status unix.WaitStatus
	select {
	case status = <-p.exited:
	case <-gone:
		p.signal(unix.SIGKILL)
		status = <-p.exited
	}
	// What the process printed last is still in the terminal; a child it
	// left behind may hold the terminal open, so the wait is bounded.
	p.master.SetReadDeadline(time.Now().Add(drainTimeout))
	<-outDone
	writeFrame(conn, frameEnd, be32(int32(exitOf(status).Code)))
	// Closing both ends execInput, even while it waits to write to a
	// terminal nobody reads.
	p.master.Close()
	conn.Close()
	<-gone
}

// startExec runs `runc exec --detach` with a terminal and returns the
// process, watched by the reaper.
func (s *Server) startExec(req Request) (*execProc, error) {
	if req.Process == "" {
		return nil, errdefs.InvalidArgument("exec needs a process file")
	}
	if _, err := s.container(req.ID); err != nil {
		return nil, err
	}
	console, err := runc.NewConsoleSocket()
	if err != nil {
		return nil, err
	}
	defer console.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	dir := filepath.Dir(req.Process)
	pidFile := filepath.Join(dir, "exec.pid")
	runcLog := filepath.Join(dir, "runc.log")
	cmd := s.runc.Command(context.Background(), runcLog, "exec", "--detach", "--console-socket", console.Path(),
		"--process", req.Process, "--pid-file", pidFile, req.ID)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	err = s.reaper.startCmd(cmd)
	if err == nil {
		err = s.reaper.waitCmd(cmd)
	}
	if err != nil {
		msg, _ := os.ReadFile(runcLog)
		return nil, runc.Classify("exec", msg, err)
	}
	master, err := console.Receive(time.Now().Add(consoleTimeout))
	if err != nil {
		return nil, err
	}
	pid, err := readPid(pidFile)
	if err != nil {
		master.Close()
		return nil, err
	}
	p := &execProc{pid: pid, pidfd: -1, master: master, exited: make(chan unix.WaitStatus, 1)}
	// A pidfd, so that killing it later can never hit a reused pid.
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		p.pidfd = fd
	}
	s.watch(pid, func(status unix.WaitStatus) { p.exited <- status })
	return p, nil
}

func (p *execProc) signal(sig unix.Signal) {
	if p.pidfd >= 0 {
		unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
	}
}

// execInput applies a client's frames to the terminal until the client
// goes away. A terminal has no end of input to pass on: the end of the
// client's stdin is a hangup, so the process gets SIGHUP.
func execInput(p *execProc, br *bufio.Reader) {
	var buf []byte
	for {
		typ, b, err := readFrame(br, buf)
		if err != nil {
			return
		}
		buf = b
		switch typ {
		case frameStdin:
			p.master.Write(b)
		case frameStdinClose:
			p.signal(unix.SIGHUP)
		case frameResize:
			if len(b) == 4 {
				runc.Resize(p.master, parse16(b), parse16(b[2:]))
			}
		}
	}
}

// copyFrames sends what r yields to w as frames of type typ until r ends.
func copyFrames(w net.Conn, r *os.File, typ byte) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := writeFrame(w, typ, buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
