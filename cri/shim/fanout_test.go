package shim

import (
	"bufio"
	"bytes"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/test/testutil"
)

type frame struct {
	typ  byte
	data string
}

func parseFrames(t *testing.T, b []byte) []frame {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(b))
	var out []frame
	for {
		typ, p, err := readFrame(r, nil)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("bad frames %q: %v", b, err)
		}
		out = append(out, frame{typ, string(p)})
	}
}

func TestFanoutDeliversToEveryClientThenEnds(t *testing.T) {
	var f fanout
	a, b := f.subscribe(), f.subscribe()
	var bufA, bufB testutil.Buffer
	errs := make(chan error, 2)
	go func() { errs <- f.drain(a, &bufA, nil) }()
	go func() { errs <- f.drain(b, &bufB, nil) }()
	f.write(frameStdout, []byte("one\n"))
	f.write(frameStderr, []byte("two\n"))
	f.write(frameStdout, []byte("three\n"))
	f.close()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	want := []frame{{frameStdout, "one\n"}, {frameStderr, "two\n"}, {frameStdout, "three\n"}, {frameEnd, ""}}
	for name, buf := range map[string]*testutil.Buffer{"a": &bufA, "b": &bufB} {
		got := parseFrames(t, buf.Bytes())
		if len(got) != len(want) {
			t.Fatalf("client %s got %v, want %v", name, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("client %s frame %d = %v, want %v", name, i, got[i], want[i])
			}
		}
	}

	// A client that comes after the output ended ends at once.
	late := f.subscribe()
	var lateBuf testutil.Buffer
	if err := f.drain(late, &lateBuf, nil); err != nil {
		t.Fatal(err)
	}
	if got := parseFrames(t, lateBuf.Bytes()); len(got) != 1 || got[0].typ != frameEnd {
		t.Errorf("late client got %v", got)
	}
}

// notifyingWriter tells after each write.
type notifyingWriter struct {
	testutil.Buffer
	wrote chan struct{}
}

func (w *notifyingWriter) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	w.wrote <- struct{}{}
	return n, err
}

func TestFanoutNeverBlocksOnASlowClient(t *testing.T) {
	var f fanout
	slow := f.subscribe() // never drained
	keeping := f.subscribe()
	w := &notifyingWriter{wrote: make(chan struct{}, 1)}
	drained := make(chan error, 1)
	go func() { drained <- f.drain(keeping, w, nil) }()

	// Twice what a client may fall behind: the container's writes never
	// wait, the client that keeps up gets everything, the other is dropped.
	chunk := bytes.Repeat([]byte("x"), 4096)
	n := 2 * maxPending / len(chunk)
	for i := range n {
		f.write(frameStdout, chunk)
		select {
		case <-w.wrote:
		case <-time.After(10 * time.Second):
			t.Fatalf("write %d never reached the reading client", i)
		}
	}
	f.close()
	go func() {
		for range w.wrote {
		}
	}()
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if got := parseFrames(t, w.Bytes()); len(got) != n+1 {
		t.Errorf("the reading client got %d frames, want %d", len(got), n+1)
	}
	// The slow one was dropped: its session ends without an end frame.
	var slowBuf testutil.Buffer
	if err := f.drain(slow, &slowBuf, nil); err != errSlowClient {
		t.Errorf("slow client: %v, want it dropped", err)
	}
	for _, fr := range parseFrames(t, slowBuf.Bytes()) {
		if fr.typ == frameEnd {
			t.Error("a dropped client got an end frame")
		}
	}
}

func TestFanoutStopEndsTheSession(t *testing.T) {
	var f fanout
	s := f.subscribe()
	stop := make(chan struct{})
	close(stop)
	var buf testutil.Buffer
	if err := f.drain(s, &buf, stop); err != nil {
		t.Fatal(err)
	}
	if got := parseFrames(t, buf.Bytes()); len(got) != 1 || got[0].typ != frameEnd {
		t.Errorf("got %v, want just the end frame", got)
	}
}

type eioReader struct{ data []byte }

func (r *eioReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, syscall.EIO
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestTeeOutputCopiesAndEndsAtEIO(t *testing.T) {
	var f fanout
	s := f.subscribe()
	data, err := io.ReadAll(teeOutput{&eioReader{[]byte("from a terminal\r\n")}, &f, frameStdout})
	if err != nil || string(data) != "from a terminal\r\n" {
		t.Fatalf("read %q, %v; want the data, then EOF for EIO", data, err)
	}
	f.close()
	var buf testutil.Buffer
	f.drain(s, &buf, nil)
	if got := parseFrames(t, buf.Bytes()); len(got) != 2 || got[0] != (frame{frameStdout, "from a terminal\r\n"}) {
		t.Errorf("clients got %v", got)
	}
}
