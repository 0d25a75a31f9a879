package shim

import (
	"os"

	"github.com/berth-project/berth/cri/runc"
)

// startIO is a container's stdio while runc starts it. runc's own stdio
// is what a non-tty container inherits; a tty container gets a terminal
// whose master runc sends through the console socket instead.
type startIO struct {
	runcStdin, runcStdout, runcStderr *os.File // runc's ends, ours to close once it ran

	stdinW, outR, errR *os.File            // our ends of the pipes
	console            *runc.ConsoleSocket // tty only
	master             *os.File            // tty only, once received
}

// newStartIO prepares a container's stdio: pipes for stdout and stderr
// (and stdin when asked for) or, for a tty, a console socket.
func newStartIO(stdin, tty bool) (_ *startIO, err error) {
	sio := &startIO{}
	defer func() {
		if err != nil {
			sio.closeRuncEnds()
			sio.close()
		}
	}()
	if tty {
		// runc's own stdio only ever sees runc's messages, which go to
		// its log file.
		if sio.runcStdin, err = os.Open(os.DevNull); err != nil {
			return nil, err
		}
		sio.runcStdout, sio.runcStderr = sio.runcStdin, sio.runcStdin
		sio.console, err = runc.NewConsoleSocket()
		return sio, err
	}
	if stdin {
		if sio.runcStdin, sio.stdinW, err = os.Pipe(); err != nil {
			return nil, err
		}
	} else if sio.runcStdin, err = os.Open(os.DevNull); err != nil {
		return nil, err
	}
	if sio.outR, sio.runcStdout, err = os.Pipe(); err != nil {
		return nil, err
	}
	if sio.errR, sio.runcStderr, err = os.Pipe(); err != nil {
		return nil, err
	}
	return sio, nil
}

// closeRuncEnds closes the ends runc (and so the container) was given.
func (sio *startIO) closeRuncEnds() {
	for _, f := range []*os.File{sio.runcStdin, sio.runcStdout, sio.runcStderr} {
		if f != nil {
			f.Close()
		}
	}
	sio.runcStdin, sio.runcStdout, sio.runcStderr = nil, nil, nil
}

// release hands our ends over to the container: close leaves them open.
func (sio *startIO) release() {
	sio.stdinW, sio.outR, sio.errR, sio.master = nil, nil, nil, nil
}

// close closes our ends that were not released, and the console socket.
func (sio *startIO) close() {
	for _, f := range []*os.File{sio.stdinW, sio.outR, sio.errR, sio.master} {
		if f != nil {
			f.Close()
		}
	}
	if sio.console != nil {
		sio.console.Close()
		sio.console = nil
	}
}
