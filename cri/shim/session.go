package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/berth-project/berth/cri/errdefs"
)

// Streams are the client's ends of an attach or exec session. A nil Stdin
// feeds nothing, nil writers discard, a nil Resize never resizes.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Resize         <-chan WinSize
}

// WinSize is a terminal's size in characters.
type WinSize struct {
	Width, Height uint16
}

// Attach connects st to the live output and stdin of container id (its
// terminal, for a tty container) until the container's output ends, a
// write to st fails or ctx ends. It does not wait for the goroutine
// reading st.Stdin: that one returns when st.Stdin does.
func Attach(ctx context.Context, socket, id string, st Streams) error {
	_, err := session(ctx, socket, Request{Op: OpAttach, ID: id, Stdin: st.Stdin != nil}, st)
	return err
}

// ExecTTY runs the process in processFile (which asks for a terminal) in
// container id through the shim, connects st to its terminal and returns
// its exit code. Ending ctx, or a failing write to st, kills the process.
func ExecTTY(ctx context.Context, socket, id, processFile string, st Streams) (int, error) {
	end, err := session(ctx, socket, Request{Op: OpExec, ID: id, Process: processFile}, st)
	if err != nil {
		return 0, err
	}
	if len(end) != 4 {
		return 0, errors.New("shim: exec ended without an exit code")
	}
	return int(parse32(end)), nil
}

// session sends req, then relays frames between the connection and st
// until the end frame, whose payload it returns.
func session(ctx context.Context, socket string, req Request, st Streams) ([]byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, errdefs.Unavailable("shim %s: %v", socket, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	data, _ := json.Marshal(req)
	if _, err := conn.Write(append(data, '\n')); err != nil {
		return nil, errdefs.Unavailable("shim %s: %v", socket, err)
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errdefs.Unavailable("shim %s: %v", socket, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, errdefs.Unavailable("shim %s: %v", socket, err)
	}
	if err := resp.err(); err != nil {
		return nil, err
	}

	done := make(chan struct{})
	defer close(done)
	var mu sync.Mutex // frames from the two senders must not interleave
	send := func(typ byte, p []byte) error {
		mu.Lock()
		defer mu.Unlock()
		return writeFrame(conn, typ, p)
	}
	if st.Stdin != nil {
		go sendStdin(st.Stdin, send)
	}
	if st.Resize != nil {
		go func() {
			for {
				select {
				case size, ok := <-st.Resize:
					if !ok {
						return
					}
					if send(frameResize, append(be16(size.Width), be16(size.Height)...)) != nil {
						return
					}
				case <-done:
					return
				}
			}
		}()
	}
	var buf []byte
	for {
		typ, p, err := readFrame(br, buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, errdefs.Unavailable("shim %s: %s session cut short: %v", socket, req.Op, err)
		}
		buf = p
		var w io.Writer
		switch typ {
		case frameStdout:
			w = st.Stdout
		case frameStderr:
			w = st.Stderr
		case frameEnd:
			return append([]byte(nil), p...), nil
		}
		if w != nil {
			if _, err := w.Write(p); err != nil {
				return nil, err
			}
		}
	}
}

// sendStdin forwards r as stdin frames, then says that it ended.
func sendStdin(r io.Reader, send func(byte, []byte) error) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if send(frameStdin, buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			send(frameStdinClose, nil)
			return
		}
	}
}
