package oci

import (
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestMergeResources(t *testing.T) {
	cur := &runtimeapi.LinuxContainerResources{
		CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000, MemoryLimitInBytes: 64 << 20,
		OomScoreAdj: 500, CpusetCpus: "0", Unified: map[string]string{"memory.high": "1", "pids.max": "10"},
		HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 1}},
	}
	curCopy := proto.Clone(cur)
	update := &runtimeapi.LinuxContainerResources{
		CpuQuota: 20000, MemoryLimitInBytes: 128 << 20, CpusetMems: "0",
		Unified:        map[string]string{"memory.high": "2"},
		HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 2}, {PageSize: "1GB", Limit: 3}},
	}
	want := &runtimeapi.LinuxContainerResources{
		CpuShares: 512, CpuQuota: 20000, CpuPeriod: 100000, MemoryLimitInBytes: 128 << 20,
		OomScoreAdj: 500, CpusetCpus: "0", CpusetMems: "0",
		Unified:        map[string]string{"memory.high": "2", "pids.max": "10"},
		HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 2}, {PageSize: "1GB", Limit: 3}},
	}
	if got := MergeResources(cur, update); !proto.Equal(got, want) {
		t.Errorf("merge = %v\nwant    %v", got, want)
	}
	if !proto.Equal(cur, curCopy) {
		t.Error("merge modified its input")
	}
	if got := MergeResources(nil, update); got.GetCpuShares() != 0 || got.GetCpuQuota() != 20000 {
		t.Errorf("merge onto nil = %v", got)
	}
	if got := MergeResources(cur, nil); !proto.Equal(got, cur) {
		t.Errorf("merge of nil = %v, want the current values", got)
	}
}

func TestUpdateContainerResources(t *testing.T) {
	in := containerInput(t, func(in *ContainerInput) {
		in.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuShares: 512, MemoryLimitInBytes: 64 << 20, OomScoreAdj: 100}
	})
	s := mustContainerSpec(t, in)
	devices := len(s.Linux.Resources.Devices)

	err := UpdateContainerResources(s, &runtimeapi.LinuxContainerResources{CpuQuota: 20000, CpuPeriod: 100000, MemoryLimitInBytes: 32 << 20, OomScoreAdj: 300}, -1000, "linux")
	if err != nil {
		t.Fatal(err)
	}
	r := s.Linux.Resources
	if r.CPU == nil || r.CPU.Shares != nil || *r.CPU.Quota != 20000 || *r.CPU.Period != 100000 {
		t.Errorf("cpu = %+v: the update's values, and shares it left out unset", r.CPU)
	}
	if *r.Memory.Limit != 32<<20 || *s.Process.OOMScoreAdj != 300 {
		t.Errorf("memory %d oom %d", *r.Memory.Limit, *s.Process.OOMScoreAdj)
	}
	if len(r.Devices) != devices {
		t.Errorf("devices changed: %d, had %d", len(r.Devices), devices)
	}

	// A bad value changes nothing.
	before := *r
	err = UpdateContainerResources(s, &runtimeapi.LinuxContainerResources{CpuShares: -1, MemoryLimitInBytes: 1 << 20}, -1000, "linux")
	wantInvalid(t, err, "linux.cpu_shares")
	if *s.Linux.Resources.Memory.Limit != 32<<20 || s.Linux.Resources.CPU != before.CPU || *s.Process.OOMScoreAdj != 300 {
		t.Error("a refused update changed the spec")
	}
}

func TestUpdateSandboxResourcesKeepsPauseOOMScore(t *testing.T) {
	s, err := SandboxSpec(SandboxInput{
		ID: "sb", Config: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "n", Uid: "u"},
			Linux:    &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{}},
		},
		Rootfs: t.TempDir(), NetNSPath: "/var/run/netns/cni-1", MinOOMScoreAdj: -1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := UpdateSandboxResources(s, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 256 << 20, OomScoreAdj: 1000}, -1000, "resources"); err != nil {
		t.Fatal(err)
	}
	if *s.Linux.Resources.Memory.Limit != 256<<20 || *s.Process.OOMScoreAdj != sandboxOOMScoreAdj {
		t.Errorf("memory %d oom %d; want 256Mi and the pause score", *s.Linux.Resources.Memory.Limit, *s.Process.OOMScoreAdj)
	}
}
