package server

import (
	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/store"
)

// NRI plugins see sandboxes and containers as NRI's api types; these
// build them from berth's records.

func (s *Service) nriPod(sb *store.Sandbox) *api.PodSandbox {
	cfg := sb.Config()
	st := sb.Status()
	md := cfg.GetMetadata()
	return &api.PodSandbox{
		Id:             sb.Meta.ID,
		Name:           md.GetName(),
		Uid:            md.GetUid(),
		Namespace:      md.GetNamespace(),
		Labels:         cfg.GetLabels(),
		Annotations:    cfg.GetAnnotations(),
		RuntimeHandler: sb.Meta.RuntimeHandler,
		Linux: &api.LinuxPodSandbox{
			CgroupParent: sb.Meta.CgroupParent,
			CgroupsPath:  s.cfg.CgroupDriver.Path(sb.Meta.CgroupParent, sb.Meta.ID),
		},
		Pid: uint32(st.Pid),
		Ips: st.IPs,
	}
}

// nriContainer describes a container; spec, when given, is its OCI spec
// (what plugins may adjust at creation).
func nriContainer(meta *store.ContainerMeta, st store.ContainerStatus, spec *specs.Spec) *api.Container {
	cfg := meta.Config.Msg
	ctr := &api.Container{
		Id:           meta.ID,
		PodSandboxId: meta.SandboxID,
		Name:         cfg.GetMetadata().GetName(),
		State:        nriState(st.State),
		Labels:       cfg.GetLabels(),
		Annotations:  cfg.GetAnnotations(),
		Args:         append(append([]string(nil), cfg.GetCommand()...), cfg.GetArgs()...),
		Pid:          uint32(st.Pid),
		CreatedAt:    meta.CreatedAt,
		StartedAt:    st.StartedAt,
		FinishedAt:   st.FinishedAt,
		ExitCode:     st.ExitCode,
		StatusReason: st.Reason,
	}
	if spec != nil {
		ctr.Annotations = spec.Annotations
		if p := spec.Process; p != nil {
			ctr.Args, ctr.Env = p.Args, p.Env
		}
		ctr.Mounts = api.FromOCIMounts(spec.Mounts)
		if l := spec.Linux; l != nil {
			ctr.Linux = &api.LinuxContainer{
				Namespaces:  api.FromOCILinuxNamespaces(l.Namespaces),
				Resources:   api.FromOCILinuxResources(l.Resources, nil),
				CgroupsPath: l.CgroupsPath,
			}
			if p := spec.Process; p != nil && p.OOMScoreAdj != nil {
				ctr.Linux.OomScoreAdj = api.Int(*p.OOMScoreAdj)
			}
		}
	}
	return ctr
}

func nriState(st store.ContainerState) api.ContainerState {
	switch st {
	case store.ContainerCreated:
		return api.ContainerState_CONTAINER_CREATED
	case store.ContainerRunning:
		return api.ContainerState_CONTAINER_RUNNING
	case store.ContainerExited:
		return api.ContainerState_CONTAINER_STOPPED
	}
	return api.ContainerState_CONTAINER_UNKNOWN
}

// nriState lists what a connecting plugin is synchronised with: the ready
// sandboxes and their created or running containers.
func (s *Service) nriSnapshot() ([]*api.PodSandbox, []*api.Container) {
	var pods []*api.PodSandbox
	var ctrs []*api.Container
	for _, sb := range s.store.Sandboxes() {
		if sb.Status().State != store.SandboxReady {
			continue
		}
		pods = append(pods, s.nriPod(sb))
		for _, c := range s.store.SandboxContainers(sb.Meta.ID) {
			if st := c.Status().State; st == store.ContainerCreated || st == store.ContainerRunning {
				ctrs = append(ctrs, nriContainer(&c.Meta, c.Status(), nil))
			}
		}
	}
	return pods, ctrs
}

// nriContainerStopped tells plugins a container stopped, once, whether it
// was stopped or exited by itself. It is called where the STOPPED event
// goes out.
func (s *Service) nriContainerStopped(typ runtimeapi.ContainerEventType, c *store.Container) {
	if s.nri == nil || typ != runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT {
		return
	}
	sb, err := s.store.Sandbox(c.Meta.SandboxID)
	if err != nil {
		return
	}
	ctx, cancel := cleanupContext()
	defer cancel()
	if err := s.nri.StopContainer(ctx, s.nriPod(sb), nriContainer(&c.Meta, c.Status(), nil)); err != nil {
		s.log.Warn("NRI plugins and a stopped container", "container", c.Meta.ID, "error", err)
	}
}

// nriPodOf is the NRI view of a container's sandbox, or just its ID once
// the sandbox is gone.
func (s *Service) nriPodOf(sandboxID string) *api.PodSandbox {
	if sb, err := s.store.Sandbox(sandboxID); err == nil {
		return s.nriPod(sb)
	}
	return &api.PodSandbox{Id: sandboxID}
}

// nriLog logs what plugins answered to an event they cannot veto.
func (s *Service) nriLog(id string, err error) {
	if err != nil {
		s.log.Warn("NRI plugins", "id", id, "error", err)
	}
}
