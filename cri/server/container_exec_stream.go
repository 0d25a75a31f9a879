package server

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/berth-project/berth/cri/atomicfile"
	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/runc"
	"github.com/berth-project/berth/cri/shim"
	"github.com/berth-project/berth/cri/store"
	"github.com/berth-project/berth/cri/streaming"
)

// Exec hands out the URL of a streaming exec session in a running
// container; the command runs once a client connects to it.
func (s *Service) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if len(req.GetCmd()) == 0 {
		return nil, errdefs.InvalidArgument("cmd is required")
	}
	if err := validateStreams(req.GetTty(), req.GetStdin(), req.GetStdout(), req.GetStderr()); err != nil {
		return nil, err
	}
	streams, err := s.streamServer()
	if err != nil {
		return nil, err
	}
	if _, err := s.runningContainer(ctx, req.GetContainerId()); err != nil {
		return nil, err
	}
	return streams.GetExec(req)
}

// validateStreams checks a session's choice of streams: a terminal merges
// stderr into stdout, and a session without streams has nothing to do.
func validateStreams(tty, stdin, stdout, stderr bool) error {
	if tty && stderr {
		return errdefs.InvalidArgument("tty and stderr cannot both be true: a terminal has one output")
	}
	if !stdin && !stdout && !stderr {
		return errdefs.InvalidArgument("one of stdin, stdout and stderr must be true")
	}
	return nil
}

// streamServer is the streaming server, if berthd serves one.
func (s *Service) streamServer() (*streaming.Server, error) {
	if s.streams == nil {
		return nil, errdefs.Unavailable("no streaming server is configured")
	}
	return s.streams, nil
}

// ServeStreams serves the exec, attach and port-forward sessions until
// ctx ends.
func (s *Service) ServeStreams(ctx context.Context) error {
	streams, err := s.streamServer()
	if err != nil {
		return err
	}
	s.log.Info("serving streaming sessions", "url", streams.URL())
	return streams.Run(ctx)
}

// runningContainer returns container id if it is running.
func (s *Service) runningContainer(ctx context.Context, id string) (*store.Container, error) {
	if id == "" {
		return nil, errdefs.InvalidArgument("container_id is required")
	}
	c, err := s.store.Container(id)
	if err != nil {
		return nil, err
	}
	if st := s.containerStatus(ctx, c); st.State != store.ContainerRunning {
		return nil, errdefs.FailedPrecondition("container %s is %s, not running", c.Meta.ID, st.State)
	}
	return c, nil
}

// shimSocketOf is the socket of the shim that runs container c.
func (s *Service) shimSocketOf(c *store.Container) (string, error) {
	sb, err := s.store.Sandbox(c.Meta.SandboxID)
	if err != nil {
		return "", fmt.Errorf("sandbox of container %s: %w", c.Meta.ID, err)
	}
	return sb.Status().Shim.Socket, nil
}

// streamRuntime runs the sessions the streaming server hands out (its
// methods' names are those of the RPCs, hence a type of its own).
type streamRuntime struct{ s *Service }

var _ streaming.Runtime = streamRuntime{}

// Exec runs cmd in the container with the container's process settings.
// Without a terminal, berthd runs it itself (see Service.exec) with the
// client's streams as its stdio. With one, the pod's shim runs it: runc gives a
// terminal only to a process it detaches, and only the shim, as the
// subreaper, can collect that process's exit status. A non-zero exit code
// is returned as the exit error the streaming server passes on.
func (r streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	s := r.s
	c, err := s.runningContainer(ctx, id)
	if err != nil {
		return err
	}
	spec, proc, err := execProcess(c, cmd)
	if err != nil {
		return err
	}
	var code int
	if tty {
		scratch, err := s.execScratch()
		if err != nil {
			return err
		}
		defer os.RemoveAll(scratch)
		socket, err := s.shimSocketOf(c)
		if err != nil {
			return err
		}
		proc.Terminal = true
		if !slices.ContainsFunc(proc.Env, func(kv string) bool { return strings.HasPrefix(kv, "TERM=") }) {
			proc.Env = append(proc.Env, "TERM=xterm") // a terminal's type, as containerd gives one
		}
		processFile := filepath.Join(scratch, "process.json")
		if err := atomicfile.WriteJSON(processFile, proc); err != nil {
			return err
		}
		done := make(chan struct{})
		defer close(done)
		code, err = shim.ExecTTY(ctx, socket, c.Meta.ID, processFile, shim.Streams{
			Stdin: in, Stdout: out, Resize: winSizes(resize, done),
		})
		if err != nil {
			return fmt.Errorf("exec in container %s: %w", c.Meta.ID, err)
		}
	} else {
		code, err = s.exec(ctx, c, spec, proc, runc.ExecIO{Stdin: in, Stdout: out, Stderr: errOut}, 0)
		if err != nil {
			return err
		}
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

// winSizes passes the client's terminal sizes on to the shim until done.
func winSizes(in <-chan remotecommand.TerminalSize, done <-chan struct{}) <-chan shim.WinSize {
	if in == nil {
		return nil
	}
	out := make(chan shim.WinSize)
	go func() {
		defer close(out)
		for {
			select {
			case size, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- shim.WinSize{Width: size.Width, Height: size.Height}:
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	return out
}
