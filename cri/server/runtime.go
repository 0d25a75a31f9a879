package server

import (
	"context"
	"encoding/json"
	"os/exec"
	goruntime "runtime"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/cgroup"
	"github.com/berth-project/berth/cri/runc"
)

// Version names the runtime and the CRI version it serves.
func (s *Service) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           "0.1.0",
		RuntimeName:       "berth",
		RuntimeVersion:    Version,
		RuntimeApiVersion: "v1",
	}, nil
}

// Status reports RuntimeReady and NetworkReady; NetworkReady is false,
// with the reason, until a pod network is configured. Verbose adds how the
// runtime is set up (statusInfo).
func (s *Service) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	runtimeReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	networkReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if err := s.network.Ready(); err != nil {
		networkReady.Status = false
		networkReady.Reason = "NetworkPluginNotReady"
		networkReady.Message = "berth: network plugin is not ready: " + err.Error()
	}
	// The default handler ("") and its name "runc" are one and the same.
	features := &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: true, UserNamespaces: true}
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{runtimeReady, networkReady}},
		RuntimeHandlers: []*runtimeapi.RuntimeHandler{
			{Name: "", Features: features},
			{Name: "runc", Features: features},
		},
		// Merge and Strict are honoured when resolving a container's user.
		Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}
	if req.GetVerbose() {
		resp.Info = s.statusInfo(ctx, networkReady)
	}
	return resp, nil
}

// runtimeInfo is the "config" of Status's verbose info: how this runtime
// is set up, in the spirit of what `crictl info` shows for containerd.
type runtimeInfo struct {
	RootDir            string                 `json:"rootDir"`
	StateDir           string                 `json:"stateDir"`
	CgroupDriver       string                 `json:"cgroupDriver"`
	CgroupVersion      string                 `json:"cgroupVersion"`
	SandboxImage       string                 `json:"sandboxImage"`
	DefaultRuntimeName string                 `json:"defaultRuntimeName"`
	Runtimes           map[string]runtimeRunc `json:"runtimes"`
	ShimBinary         string                 `json:"shimBinary"`
	CNI                struct {
		ConfDir string `json:"confDir"`
	} `json:"cni"`
	// MinOOMScoreAdj is the lowest oom_score_adj berth gives (see oom.go).
	MinOOMScoreAdj int `json:"minOOMScoreAdj"`
	// CRIU is the criu binary checkpointing would need; "" when absent.
	CRIU string `json:"criu"`
}

type runtimeRunc struct {
	Binary        string        `json:"binary"`
	Root          string        `json:"root"`
	SystemdCgroup bool          `json:"systemdCgroup"`
	Version       *runc.Version `json:"version,omitempty"`
	VersionError  string        `json:"versionError,omitempty"`
}

// statusInfo is Status's verbose info: "config" (runtimeInfo), "golang"
// (the Go version berthd was built with) and "lastCNILoadStatus" ("OK" or
// why the pod network is not ready), each a JSON value as the CRI asks.
func (s *Service) statusInfo(ctx context.Context, network *runtimeapi.RuntimeCondition) map[string]string {
	r := runtimeRunc{Binary: s.cfg.Runc.Binary, Root: s.cfg.Runc.Root, SystemdCgroup: s.cfg.Runc.SystemdCgroup}
	if v, err := s.cfg.Runc.Version(ctx); err != nil {
		r.VersionError = err.Error()
	} else {
		r.Version = &v
	}
	cfg := runtimeInfo{
		RootDir:            s.cfg.Root,
		StateDir:           s.cfg.State,
		CgroupDriver:       string(s.cfg.CgroupDriver),
		CgroupVersion:      "v1",
		SandboxImage:       PauseImage,
		DefaultRuntimeName: "runc",
		Runtimes:           map[string]runtimeRunc{"runc": r},
		ShimBinary:         s.cfg.ShimBinary,
		MinOOMScoreAdj:     s.cfg.MinOOMScoreAdj,
	}
	if cgroup.Unified() {
		cfg.CgroupVersion = "v2"
	}
	cfg.CNI.ConfDir = s.cfg.CNIConfDir
	cfg.CRIU, _ = exec.LookPath("criu")
	cniStatus := "OK"
	if !network.Status {
		cniStatus = network.Message
	}
	info := map[string]string{}
	for k, v := range map[string]any{"config": cfg, "golang": goruntime.Version(), "lastCNILoadStatus": cniStatus} {
		data, _ := json.Marshal(v) // plain structs and strings always marshal
		info[k] = string(data)
	}
	return info
}

// UpdateRuntimeConfig takes the node's pod CIDR; with no pod network
// configured yet, berth writes its default one for that CIDR.
func (s *Service) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	if cidr := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr(); cidr != "" {
		if err := s.network.UpdatePodCIDR(cidr); err != nil {
			return nil, err
		}
		s.log.Info("pod CIDR updated", "cidr", cidr)
	}
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// RuntimeConfig reports the cgroup driver, so kubelet can match it.
func (s *Service) RuntimeConfig(ctx context.Context, req *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	driver := runtimeapi.CgroupDriver_CGROUPFS
	if s.cfg.CgroupDriver == cgroup.Systemd {
		driver = runtimeapi.CgroupDriver_SYSTEMD
	}
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: driver}}, nil
}
