package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/store"
)

// PodSandboxStatus reports a sandbox's state, IPs and configuration.
func (s *Service) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.store.Sandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	st := sb.Status()
	resp := &runtimeapi.PodSandboxStatusResponse{Status: sandboxStatus(sb, st)}
	if req.GetVerbose() {
		pid := st.Pid
		if st.State != store.SandboxReady {
			pid = 0 // the pause process is gone; its PID may be anyone's by now
		}
		var spec any
		if data, err := os.ReadFile(filepath.Join(s.store.SandboxDir(sb.Meta.ID), "config.json")); err == nil {
			json.Unmarshal(data, &spec)
		}
		// The CNI plugins' result as the CNI specification spells it
		// (containerd shows go-cni's digest of it under the same key).
		var cniResult any
		if data, err := os.ReadFile(filepath.Join(s.store.SandboxDir(sb.Meta.ID), cniResultFile)); err == nil {
			json.Unmarshal(data, &cniResult)
		}
		info, _ := json.Marshal(map[string]any{
			"cniResult":      cniResult,
			"runtimeType":    runtimeType,
			"runtimeOptions": s.runtimeOptions(),
			"config":         sb.Config(),
			"runtimeSpec":    spec,
			"pid":            pid,
			"shimPid":        st.Shim.Pid,
			"netns":          sb.Meta.NetNS,
			"cgroupParent":   sb.Meta.CgroupParent,
			"runtimeHandler": sb.Meta.RuntimeHandler,
			"reason":         st.Reason,
		})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// cniResultFile, in a sandbox's record directory, keeps its pod
// network's CNI result.
const cniResultFile = "cni-result.json"

// runtimeType names how berth runs containers in the verbose statuses
// (containerd says io.containerd.runc.v2 there).
const runtimeType = "berth.runc.v1"

// runtimeOptions are runc's, spelled as containerd's runc options.
func (s *Service) runtimeOptions() map[string]any {
	return map[string]any{"BinaryName": s.cfg.Runc.Binary, "Root": s.cfg.Runc.Root, "SystemdCgroup": s.cfg.Runc.SystemdCgroup}
}

func sandboxStatus(sb *store.Sandbox, st store.SandboxStatus) *runtimeapi.PodSandboxStatus {
	cfg := sb.Config()
	out := &runtimeapi.PodSandboxStatus{
		Id:             sb.Meta.ID,
		Metadata:       cfg.GetMetadata(),
		State:          sandboxState(st.State),
		CreatedAt:      sb.Meta.CreatedAt,
		Labels:         cfg.GetLabels(),
		Annotations:    cfg.GetAnnotations(),
		RuntimeHandler: sb.Meta.RuntimeHandler,
		Linux: &runtimeapi.LinuxPodSandboxStatus{
			Namespaces: &runtimeapi.Namespace{Options: cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()},
		},
	}
	out.Network = &runtimeapi.PodSandboxNetworkStatus{}
	if st.State == store.SandboxReady && len(st.IPs) > 0 {
		out.Network.Ip = st.IPs[0]
		for _, ip := range st.IPs[1:] {
			out.Network.AdditionalIps = append(out.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return out
}

func sandboxState(s store.SandboxState) runtimeapi.PodSandboxState {
	if s == store.SandboxReady {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}
