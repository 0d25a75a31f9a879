package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/atomicfile"
	"github.com/berth-project/berth/cri/errdefs"
	"github.com/berth-project/berth/cri/oci"
	"github.com/berth-project/berth/cri/store"
)

// resourcesFile, in a container's or sandbox's record directory, holds its
// CRI resources once an update changed them; until then those of its
// config are current. The bundle's config.json is rewritten with them too.
const (
	resourcesFile    = "resources.json"
	resourcesVersion = 1
)

// resourcesRecord is what resourcesFile holds.
type resourcesRecord struct {
	// Linux: a container's resources, or a sandbox's total.
	Linux *runtimeapi.LinuxContainerResources
	// Overhead: a sandbox's overhead, only recorded.
	Overhead *runtimeapi.LinuxContainerResources
}

// resourcesFileFormat is resourcesFile's versioned on-disk form, with the
// CRI messages in their canonical JSON.
type resourcesFileFormat struct {
	Version  int             `json:"version"`
	Linux    json.RawMessage `json:"linux,omitempty"`
	Overhead json.RawMessage `json:"overhead,omitempty"`
}

// UpdateContainerResources changes the cgroup limits of a created or
// running container. Fields the request leaves 0 or empty ("not
// specified" in the CRI) keep their current values. A running container
// gets the new limits at once through runc update; a created one starts
// with them. Either way ContainerStatus reports them from then on. The
// update is all or nothing: if runc refuses a value (a memory limit below
// what the container uses, say), nothing changes.
//
// oom_score_adj is not a cgroup setting: it applies to a created
// container's process and is recorded, but a running process keeps its
// score.
func (s *Service) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	if req.GetLinux() == nil {
		if req.GetWindows() != nil {
			return nil, errdefs.InvalidArgument("windows resources cannot be applied to a Linux container; set linux")
		}
		return nil, errdefs.InvalidArgument("linux resources are required")
	}
	c, err := s.store.Container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	id := c.Meta.ID
	defer s.ops.lock(containerKey(id))()
	if _, err := s.store.Container(id); err != nil {
		return nil, err // removed while we waited
	}
	st := s.containerStatus(ctx, c)
	if st.State != store.ContainerCreated && st.State != store.ContainerRunning {
		return nil, errdefs.FailedPrecondition("container %s is %s; only a created or running container can be updated", id, st.State)
	}
	next := oci.MergeResources(s.containerResources(c), req.GetLinux())
	specPath := filepath.Join(c.Dir, "config.json")
	var old, spec specs.Spec
	if err := readSpec(specPath, &old, &spec); err != nil {
		return nil, fmt.Errorf("update container %s: %w", id, err)
	}
	if err := oci.UpdateContainerResources(&spec, next, s.cfg.MinOOMScoreAdj, "linux"); err != nil {
		return nil, err
	}
	running := st.State == store.ContainerRunning
	if running {
		if err := s.runcUpdate(ctx, id, spec.Linux.Resources); err != nil {
			s.restoreLimits(id, old.Linux) // runc may have written some files before failing
			return nil, fmt.Errorf("update container %s: %w", id, err)
		}
	}
	if err := writeResources(c.Dir, &spec, resourcesRecord{Linux: next}); err != nil {
		if running {
			s.restoreLimits(id, old.Linux)
		}
		return nil, fmt.Errorf("update container %s: %w", id, err)
	}
	s.log.Info("container resources updated", "container", id, "running", running, "resources", protojson.Format(next))
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// containerResources are the container's current CRI resources.
func (s *Service) containerResources(c *store.Container) *runtimeapi.LinuxContainerResources {
	rec, err := readResources(c.Dir)
	if err == nil && rec.Linux != nil {
		return rec.Linux
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("updated resources unreadable; reporting those of the container's config", "container", c.Meta.ID, "error", err)
	}
	return c.Config().GetLinux().GetResources()
}

// runcUpdate applies the limits runc update can change to a running
// container or pause process. Devices are left out: runc cannot update them.
func (s *Service) runcUpdate(ctx context.Context, id string, r *specs.LinuxResources) error {
	if r == nil {
		r = &specs.LinuxResources{}
	}
	data, err := json.Marshal(specs.LinuxResources{CPU: r.CPU, Memory: r.Memory, Pids: r.Pids, Unified: r.Unified})
	if err != nil {
		return err
	}
	return s.cfg.Runc.Update(ctx, id, data)
}

// restoreLimits puts back the limits of a running container or pause
// process after a failed update, so that what runs matches what is
// recorded. It is best effort: a failure is logged.
func (s *Service) restoreLimits(id string, old *specs.Linux) {
	var r specs.LinuxResources
	if old != nil && old.Resources != nil {
		r = *old.Resources
	}
	ctx, cancel := cleanupContext()
	defer cancel()
	if err := s.runcUpdate(ctx, id, unlimitedWhereUnset(r)); err != nil {
		s.log.Error("restore cgroup limits after a failed update", "id", id, "error", err)
	}
}

// unlimitedWhereUnset spells out the kernel's defaults for the memory and
// CFS limits r leaves unset: runc update leaves unset limits alone, so
// restoring "no limit" needs them explicit. (CPU shares have no default
// that means the same on cgroup v1 and v2; an unset one stays as it is.)
func unlimitedWhereUnset(r specs.LinuxResources) *specs.LinuxResources {
	unlimited, period := int64(-1), uint64(100000)
	mem := specs.LinuxMemory{}
	if r.Memory != nil {
		mem = *r.Memory
	}
	if mem.Limit == nil {
		mem.Limit = &unlimited
	}
	cpu := specs.LinuxCPU{}
	if r.CPU != nil {
		cpu = *r.CPU
	}
	if cpu.Quota == nil {
		cpu.Quota = &unlimited
	}
	if cpu.Period == nil {
		cpu.Period = &period
	}
	r.Memory, r.CPU = &mem, &cpu
	return &r
}

// readSpec decodes the runtime spec at path into each of specs.
func readSpec(path string, out ...*specs.Spec) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, o := range out {
		if err := json.Unmarshal(data, o); err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
	}
	return nil
}

// writeResources rewrites a record directory's bundle spec, then its
// resources record. A crash in between leaves the new limits in force and
// the old ones reported, until the next update.
func writeResources(dir string, spec *specs.Spec, rec resourcesRecord) error {
	f := resourcesFileFormat{Version: resourcesVersion}
	for _, m := range []struct {
		msg *runtimeapi.LinuxContainerResources
		out *json.RawMessage
	}{{rec.Linux, &f.Linux}, {rec.Overhead, &f.Overhead}} {
		if m.msg == nil {
			continue
		}
		data, err := protojson.Marshal(m.msg)
		if err != nil {
			return err
		}
		*m.out = data
	}
	if err := atomicfile.WriteJSON(filepath.Join(dir, "config.json"), spec); err != nil {
		return err
	}
	return atomicfile.WriteJSON(filepath.Join(dir, resourcesFile), f)
}

// readResources reads dir's resources record; a missing file is an
// fs.ErrNotExist error.
func readResources(dir string) (resourcesRecord, error) {
	path := filepath.Join(dir, resourcesFile)
	var f resourcesFileFormat
	if err := atomicfile.ReadJSON(path, &f); err != nil {
		return resourcesRecord{}, err
	}
	if f.Version != resourcesVersion {
		return resourcesRecord{}, fmt.Errorf("%s: unknown format version %d", path, f.Version)
	}
	var rec resourcesRecord
	for _, m := range []struct {
		in  json.RawMessage
		out **runtimeapi.LinuxContainerResources
	}{{f.Linux, &rec.Linux}, {f.Overhead, &rec.Overhead}} {
		if len(m.in) == 0 {
			continue
		}
		*m.out = &runtimeapi.LinuxContainerResources{}
		if err := protojson.Unmarshal(m.in, *m.out); err != nil {
			return resourcesRecord{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	return rec, nil
}
