package runc

import (
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty opens a pseudo-terminal pair as runc's init does for a process
// that asks for a terminal.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

func TestConsoleSocketReceivesTheMaster(t *testing.T) {
	cs, err := NewConsoleSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if len(cs.Path()) >= 108 {
		t.Errorf("socket path %q is too long for a unix socket", cs.Path())
	}
	master, slave := openPty(t)
	defer slave.Close()

	// What runc does: connect, send the master with its name, close.
	conn, err := net.Dial("unix", cs.Path())
	if err != nil {
		t.Fatal(err)
	}
	rights := unix.UnixRights(int(master.Fd()))
	if _, _, err := conn.(*net.UnixConn).WriteMsgUnix([]byte(master.Name()), rights, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	master.Close() // the received descriptor is a copy of its own

	got, err := cs.Receive(time.Now().Add(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Name() != "/dev/ptmx" {
		t.Errorf("name %q, want the name runc sent", got.Name())
	}
	// The received master drives the terminal: output, input, size.
	if _, err := slave.Write([]byte("out\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	got.SetReadDeadline(time.Now().Add(10 * time.Second)) // works: the file is pollable
	n, err := got.Read(buf)
	if err != nil || string(buf[:n]) != "out\r\n" {
		t.Errorf("master read %q, %v", buf[:n], err)
	}
	if _, err := got.Write([]byte("in\n")); err != nil {
		t.Fatal(err)
	}
	n, err = slave.Read(buf)
	if err != nil || string(buf[:n]) != "in\n" {
		t.Errorf("slave read %q, %v", buf[:n], err)
	}
	if err := Resize(got, 132, 43); err != nil {
		t.Fatal(err)
	}
	ws, err := unix.IoctlGetWinsize(int(slave.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col != 132 || ws.Row != 43 {
		t.Errorf("window size %+v, %v; want 132x43", ws, err)
	}
	// Once the last slave is closed the master reads EIO: the end.
	slave.Close()
	if _, err := io.ReadAll(got); err == nil {
		t.Error("master read no error after the terminal closed")
	}
}

func TestConsoleSocketGivesUp(t *testing.T) {
	cs, err := NewConsoleSocket()
	if err != nil {
		t.Fatal(err)
	}
	dir := cs.dir
	if _, err := cs.Receive(time.Now().Add(50 * time.Millisecond)); err == nil {
		t.Error("received a terminal nobody sent")
	}
	if err := cs.Close(); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("socket directory left behind: %v", err)
	}
}
