package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/pkg/probe"
)

// runHook runs a lifecycle handler (postStart or preStop) as kubelet does:
// exec in the container, an HTTP GET to the pod, or a sleep. ctx bounds
// it (a preStop hook's grace period).
func (w *worker) runHook(ctx context.Context, h *v1.LifecycleHandler, containerID, podIP string, ports []v1.ContainerPort) error {
	switch {
	case h.Exec != nil:
		out, err := probe.Exec(ctx, w.m.cfg.Runtime, containerID, h.Exec.Command, 0)
		if err != nil {
			return err
		}
		if !out.OK {
			return fmt.Errorf("command %q failed: %s", h.Exec.Command, out.Output)
		}
	case h.HTTPGet != nil:
		out, err := probe.HTTPGet(ctx, h.HTTPGet, podIP, ports, 0)
		if err != nil {
			return err
		}
		if !out.OK {
			return fmt.Errorf("http get: %s", out.Output)
		}
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
		case <-w.m.clock.After(time.Duration(h.Sleep.Seconds) * time.Second):
		}
	case h.TCPSocket != nil:
		// Deprecated and never run by kubelet either.
		return nil
	default:
		return errors.New("lifecycle handler has no action")
	}
	return nil
}
