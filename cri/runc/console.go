package runc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ConsoleSocket receives the pseudo-terminal master of a container or exec
// process that runc starts with a terminal and --detach: runc connects to
// the socket named by --console-socket and sends the master's file
// descriptor in an SCM_RIGHTS message, then keeps nothing of it.
//
// The socket lives in a private temporary directory, so that its path is
// short (unix socket paths are limited to 108 bytes) and only root can
// reach it.
type ConsoleSocket struct {
	dir string
	l   *net.UnixListener
}

// NewConsoleSocket listens on a fresh console socket. The caller closes it.
func NewConsoleSocket() (*ConsoleSocket, error) {
	dir, err := os.MkdirTemp("", "berth-console-")
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "c.sock"), Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return &ConsoleSocket{dir: dir, l: l}, nil
}

// Path is what to pass to runc as --console-socket.
func (c *ConsoleSocket) Path() string { return filepath.Join(c.dir, "c.sock") }

// Receive waits until deadline for runc to connect and send the terminal
// master, and returns it as a non-blocking (pollable) file owned by the
// caller. Closing the socket makes a waiting Receive return.
func (c *ConsoleSocket) Receive(deadline time.Time) (*os.File, error) {
	if err := c.l.SetDeadline(deadline); err != nil {
		return nil, err
	}
	conn, err := c.l.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("console socket: runc did not connect: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	return ReceiveMaster(conn)
}

// ReceiveMaster reads one message carrying a terminal master's descriptor
// from conn, the way runc sends it (the message body is the pty's name).
func ReceiveMaster(conn *net.UnixConn) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(name, oob)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		rights, err := unix.ParseUnixRights(&m)
		if err == nil {
			fds = append(fds, rights...)
		}
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("console socket: expected one terminal descriptor, got %d", len(fds))
	}
	// Non-blocking before os.NewFile, so that reads go through the
	// poller (and honour deadlines and Close) instead of holding a thread.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("console socket: %w", err)
	}
	unix.CloseOnExec(fds[0])
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}

// Close stops listening and removes the socket's directory.
func (c *ConsoleSocket) Close() error {
	err := c.l.Close()
	if rmErr := os.RemoveAll(c.dir); rmErr != nil {
		err = errors.Join(err, rmErr)
	}
	return err
}

// Resize sets a terminal's window size; the kernel sends SIGWINCH to the
// terminal's foreground process group.
func Resize(master *os.File, width, height uint16) error {
	if width == 0 && height == 0 {
		return nil
	}
	raw, err := master.SyscallConn()
	if err != nil {
		return err
	}
	var ioctlErr error
	err = raw.Control(func(fd uintptr) {
		ioctlErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: width, Row: height})
	})
	if err != nil {
		return err
	}
	return ioctlErr
}
