package server

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListPodSandbox lists sandboxes, filtered by ID (or prefix), state and
// labels.
func (s *Service) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, sb := range s.store.Sandboxes() {
		if f.GetId() != "" && !strings.HasPrefix(sb.Meta.ID, f.GetId()) {
			continue
		}
		cfg := sb.Config()
		if !matchLabels(cfg.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		state := sandboxState(sb.Status().State)
		if f.GetState() != nil && f.GetState().GetState() != state {
			continue
		}
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{
			Id:             sb.Meta.ID,
			Metadata:       cfg.GetMetadata(),
			State:          state,
			CreatedAt:      sb.Meta.CreatedAt,
			Labels:         cfg.GetLabels(),
			Annotations:    cfg.GetAnnotations(),
			RuntimeHandler: sb.Meta.RuntimeHandler,
		})
	}
	if n := trimAnswer(resp, resp.Items, (*runtimeapi.PodSandbox).GetAnnotations, func(p *runtimeapi.PodSandbox) { p.Annotations = nil }); n > 0 {
		s.log.Warn(trimmedNote("ListPodSandbox", n))
	}
	return resp, nil
}

// matchLabels reports whether labels has every key/value of selector.
func matchLabels(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
