package shim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/cri/crilog"
	"github.com/berth-project/berth/cri/errdefs"

	"github.com/berth-project/berth/test/testutil"
)

// attachServer is a shim server holding one running container, c1, whose
// stdin is a pipe the test reads; it answers on a socket in a temporary
// directory (without becoming a subreaper: nothing runs).
func attachServer(t *testing.T, stdinOnce bool) (*Server, *container, *os.File, string) {
	t.Helper()
	s := NewServer(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdinR.Close(); stdinW.Close() })
	c := &container{id: "c1", exited: make(chan struct{}), log: crilog.NewWriter(nil, nil), stdin: stdinW, stdinOnce: stdinOnce}
	s.byID[c.id] = c
	socket := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go s.handle(conn)
		}
	}()
	return s, c, stdinR, socket
}

func TestAttachSessionRelaysOutputAndStdin(t *testing.T) {
	_, c, stdinR, socket := attachServer(t, false)
	clientIn, toClient := io.Pipe()
	out, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Attach(context.Background(), socket, "c1", Streams{Stdin: clientIn, Stdout: outW, Stderr: io.Discard})
	}()

	if _, err := toClient.Write([]byte("typed\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(stdinR, got); err != nil || string(got) != "typed\n" {
		t.Fatalf("container stdin read %q, %v", got, err)
	}
	// The subscription exists once stdin made it through.
	c.fan.write(frameStdout, []byte("printed\n"))
	got = make([]byte, 8)
	if _, err := io.ReadFull(out, got); err != nil || string(got) != "printed\n" {
		t.Fatalf("client read %q, %v", got, err)
	}
	// The client's stdin ending ends the session cleanly, and leaves the
	// container's stdin open for the next one (not stdin_once).
	toClient.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("session: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end with the client's stdin")
	}
	if c.stdin == nil {
		t.Error("stdin was closed for a container that is not stdin_once")
	}
}

func TestAttachStdinOnceClosesStdinAndWaitsForOutput(t *testing.T) {
	s, c, stdinR, socket := attachServer(t, true)
	var out testutil.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Attach(context.Background(), socket, "c1", Streams{Stdin: eofAfter("last\n"), Stdout: &out})
	}()
	data, err := io.ReadAll(stdinR) // EOF only once the shim closed its end
	if err != nil || string(data) != "last\n" {
		t.Fatalf("container stdin %q, %v", data, err)
	}
	select {
	case err := <-done:
		t.Fatalf("session ended (%v) before the container's output", err)
	case <-time.After(100 * time.Millisecond):
	}
	c.fan.write(frameStdout, []byte("bye\n"))
	c.fan.close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if string(out.Bytes()) != "bye\n" {
		t.Errorf("client got %q", out.Bytes())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.stdin != nil {
		t.Error("stdin_once container still has a stdin")
	}
}

func eofAfter(s string) io.Reader {
	r, w := io.Pipe()
	go func() { w.Write([]byte(s)); w.Close() }()
	return r
}

func TestSessionErrorsKeepTheirClass(t *testing.T) {
	_, c, _, socket := attachServer(t, false)
	err := Attach(context.Background(), socket, "nope", Streams{Stdout: io.Discard})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("attach to unknown container: %v, want NotFound", err)
	}
	close(c.exited)
	err = Attach(context.Background(), socket, "c1", Streams{Stdout: io.Discard})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("attach to exited container: %v, want FailedPrecondition", err)
	}
	if err := ReopenLog(context.Background(), socket, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("reopen log of unknown container: %v, want NotFound", err)
	}
}

func TestReopenLogSwapsFiles(t *testing.T) {
	_, c, _, socket := attachServer(t, false)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "0.log")
	f, err := crilog.OpenFile(logPath, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	c.logFile = f
	c.log.SetOutput(f)
	c.log.Copy("stdout", stringsReader("before\n"))
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := ReopenLog(context.Background(), socket, "c1"); err != nil {
		t.Fatal(err)
	}
	c.log.Copy("stdout", stringsReader("after\n"))
	old, _ := os.ReadFile(logPath + ".1")
	cur, _ := os.ReadFile(logPath)
	if !contains(old, " stdout F before\n") || contains(old, "after") || !contains(cur, " stdout F after\n") || contains(cur, "before") {
		t.Errorf("old file %q, new file %q", old, cur)
	}
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
