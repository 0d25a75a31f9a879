package shim

import (
	"bufio"
	"errors"
	"net"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/runc"
)

// attach is one attach session: the container's live output goes to the
// client as frames (next to the log file, which gets it all the same),
// the client's stdin frames go to the container's stdin and its resize
// frames to the container's terminal. The session ends when the
// container's output is over, when the client goes away, or when the
// client's stdin ends, except for a stdin_once container without a
// terminal: its stdin is closed and the session lasts until its output is
// over (as containerd and docker behave).
func (s *Server) attach(conn net.Conn, br *bufio.Reader, req Request) {
	c, err := s.container(req.ID)
	if err != nil {
		writeResponse(conn, errorResponse(err))
		return
	}
	sub := c.fan.subscribe()
	defer c.fan.unsubscribe(sub)
	if err := writeResponse(conn, Response{}); err != nil {
		return
	}
	inputDone := make(chan struct{})
	go func() {
		defer close(inputDone)
		s.attachInput(c, br, req.Stdin)
	}()
	if err := c.fan.drain(sub, conn, inputDone); errors.Is(err, errSlowClient) {
		s.log.Warn("attach session dropped", "container", c.id, "error", err)
	}
	// Ends attachInput if the client is still there, unless it waits for
	// the container to read its stdin; then it ends with the container.
	conn.Close()
}

// attachInput applies a client's frames until the client goes away or
// its stdin ends the session. A stdin_once container's stdin is closed
// when the first session feeding it ends.
func (s *Server) attachInput(c *container, br *bufio.Reader, feedsStdin bool) {
	if feedsStdin && c.stdinOnce {
		defer s.closeStdin(c)
	}
	var buf []byte
	for {
		typ, p, err := readFrame(br, buf)
		if err != nil {
			return
		}
		buf = p
		switch typ {
		case frameStdin:
			if feedsStdin {
				s.writeStdin(c, p)
			}
		case frameStdinClose:
			if !c.stdinOnce || c.console != nil {
				return
			}
			s.closeStdin(c)
		case frameResize:
			if c.console != nil && len(p) == 4 {
				runc.Resize(c.console, parse16(p), parse16(p[2:]))
			}
		}
	}
}

// writeStdin writes p to the container's stdin, if it has one left. It
// blocks while the container does not read: that holds back this client
// only.
func (s *Server) writeStdin(c *container, p []byte) {
	s.mu.Lock()
	f := c.stdin
	s.mu.Unlock()
	if f != nil {
		f.Write(p)
	}
}

// closeStdin ends the container's stdin: a pipe is closed, so the
// container reads EOF; a terminal stays (it is also the output) but takes
// no more input from clients.
func (s *Server) closeStdin(c *container) {
	s.mu.Lock()
	f := c.stdin
	c.stdin = nil
	s.mu.Unlock()
	if f != nil && f != c.console {
		f.Close()
	}
}

// reopenLog points the container's log at a new file at its log path (the
// old one was renamed for rotation). The swap is made under the log file's
// lock between two records, so every line lands whole in exactly one of
// the two files.
// logDropped is how many records of the container's log were dropped.
func (s *Server) logDropped(id string) (uint64, error) {
	c, err := s.container(id)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	f := c.logFile
	s.mu.Unlock()
	if f == nil {
		return 0, nil
	}
	return f.Dropped(), nil
}

func (s *Server) reopenLog(id string) error {
	c, err := s.container(id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	f := c.logFile
	s.mu.Unlock()
	if f == nil {
		return errdefs.FailedPrecondition("container %s has no log file", id)
	}
	return f.Reopen()
}
