package server

import (
	"context"
	"io"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/store"
	"github.com/berth-project/berth/cri/streaming"
)

// PortForward hands out the URL of a streaming port-forward session to a
// ready pod; the client names the ports on its streams.
func (s *Service) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, errdefs.InvalidArgument("pod_sandbox_id is required")
	}
	for _, p := range req.GetPort() {
		if p <= 0 || p > 65535 {
			return nil, errdefs.InvalidArgument("port %d is not a TCP port", p)
		}
	}
	streams, err := s.streamServer()
	if err != nil {
		return nil, err
	}
	if _, err := s.readySandbox(req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	return streams.GetPortForward(req)
}

// readySandbox returns sandbox id if it is ready.
func (s *Service) readySandbox(id string) (*store.Sandbox, error) {
	sb, err := s.store.Sandbox(id)
	if err != nil {
		return nil, err
	}
	if st := sb.Status(); st.State != store.SandboxReady {
		return nil, errdefs.FailedPrecondition("sandbox %s is not ready (%s)", sb.Meta.ID, st.Reason)
	}
	return sb, nil
}

// PortForward connects the stream to port on the pod's loopback: inside
// the pod's network namespace, or on the host for a host-network pod.
func (r streamRuntime) PortForward(ctx context.Context, podSandboxID string, port int32, stream io.ReadWriteCloser) error {
	sb, err := r.s.readySandbox(podSandboxID)
	if err != nil {
		return err
	}
	return streaming.PortForward(ctx, sb.Meta.NetNS, port, stream)
}
