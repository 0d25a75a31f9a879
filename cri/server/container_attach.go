package server

import (
	"context"
	"fmt"
	"io"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/berth-project/berth/cri/shim"
)

// Attach hands out the URL of a streaming attach session to a running
// container: its live output (as it also goes to the log) and, for a
// container created with stdin, its stdin.
func (s *Service) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
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
	return streams.GetAttach(req)
}

// Attach connects the client's streams to the container through the pod's
// shim, which holds the container's stdio: output is fanned out to every
// attached client, stdin from any of them goes to the container. It returns
// when the container's output ends, the client goes away or (unless the
// container is stdin_once without a terminal) the client's stdin ends.
// Stdin sent to a container created without stdin is dropped, as is a
// terminal resize for a container without a terminal.
func (r streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	s := r.s
	c, err := s.runningContainer(ctx, id)
	if err != nil {
		return err
	}
	socket, err := s.shimSocketOf(c)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	defer close(done)
	err = shim.Attach(ctx, socket, c.Meta.ID, shim.Streams{Stdin: in, Stdout: out, Stderr: errOut, Resize: winSizes(resize, done)})
	if err != nil {
		return fmt.Errorf("attach to container %s: %w", c.Meta.ID, err)
	}
	return nil
}
