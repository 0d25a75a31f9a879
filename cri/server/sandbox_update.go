package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/oci"
	"github.com/berth-project/berth/cri/store"
)

// UpdatePodSandboxResources takes a pod's new total resources after
// kubelet resized the pod's cgroup (its cgroup_parent, which kubelet owns
// and has already changed when it calls this).
//
// berth has no pod-level cgroup of its own: each container, and the pause
// process, sits in its own cgroup below the parent. The pause process was
// given the pod's total resources at RunPodSandbox, so the new total is
// applied to it the same way (runc update; fields left 0 or empty keep
// their values, as in UpdateContainerResources) and written into its
// bundle. The overhead is only recorded: berth applies it nowhere, as at
// creation. The containers' own limits change through
// UpdateContainerResources. kubelet treats this call as best effort.
func (s *Service) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	sb, err := s.store.Sandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	id := sb.Meta.ID
	defer s.ops.lock(sandboxKey(id))()
	if _, err := s.store.Sandbox(id); err != nil {
		return nil, err // removed while we waited
	}
	if st := sb.Status(); st.State != store.SandboxReady {
		return nil, errdefs.FailedPrecondition("sandbox %s is not ready (%s); only a ready sandbox's resources can be updated", id, st.Reason)
	}
	cur := s.sandboxResources(sb)
	next := resourcesRecord{
		Linux:    oci.MergeResources(cur.Linux, req.GetResources()),
		Overhead: oci.MergeResources(cur.Overhead, req.GetOverhead()),
	}
	// The overhead is validated as the total is, though only recorded.
	var old, spec, scratch specs.Spec
	if err := readSpec(filepath.Join(sb.Dir, "config.json"), &old, &spec, &scratch); err != nil {
		return nil, fmt.Errorf("update sandbox %s: %w", id, err)
	}
	if err := oci.UpdateSandboxResources(&scratch, next.Overhead, s.cfg.MinOOMScoreAdj, "overhead"); err != nil {
		return nil, err
	}
	if err := oci.UpdateSandboxResources(&spec, next.Linux, s.cfg.MinOOMScoreAdj, "resources"); err != nil {
		return nil, err
	}
	if err := s.runcUpdate(ctx, id, spec.Linux.Resources); err != nil {
		s.restoreLimits(id, old.Linux)
		return nil, fmt.Errorf("update sandbox %s: %w", id, err)
	}
	if err := writeResources(sb.Dir, &spec, next); err != nil {
		s.restoreLimits(id, old.Linux)
		return nil, fmt.Errorf("update sandbox %s: %w", id, err)
	}
	s.log.Info("sandbox resources updated", "sandbox", id, "resources", protojson.Format(next.Linux), "overhead", protojson.Format(next.Overhead))
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}

// sandboxResources are the sandbox's current total and overhead.
func (s *Service) sandboxResources(sb *store.Sandbox) resourcesRecord {
	rec, err := readResources(sb.Dir)
	if err == nil {
		return rec
	}
	if !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("updated sandbox resources unreadable; using those of the sandbox's config", "sandbox", sb.Meta.ID, "error", err)
	}
	linux := sb.Config().GetLinux()
	return resourcesRecord{Linux: linux.GetResources(), Overhead: linux.GetOverhead()}
}
