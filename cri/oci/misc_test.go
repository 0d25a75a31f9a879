package oci

import (
	"maps"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestPodSysctls(t *testing.T) {
	got, err := podSysctls(map[string]string{
		"net.ipv4.ip_forward":               "1",
		"net/ipv4/conf/eth0.100/forwarding": "1",
		"kernel.shm_rmid_forced":            "1",
		"fs.mqueue.msg_max":                 "20",
		"kernel.domainname":                 "example",
	}, nsModes{network: pod, pid: pod, ipc: pod})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"net.ipv4.ip_forward":               "1",
		"net.ipv4.conf.eth0/100.forwarding": "1",
		"kernel.shm_rmid_forced":            "1",
		"fs.mqueue.msg_max":                 "20",
		"kernel.domainname":                 "example",
	}
	if !maps.Equal(got, want) {
		t.Errorf("sysctls = %v, want %v", got, want)
	}

	tests := []struct {
		name   string
		sysctl string
		modes  nsModes
	}{
		{"net with host network", "net.core.somaxconn", nsModes{network: node, pid: pod, ipc: pod}},
		{"ipc with host ipc", "kernel.shmmax", nsModes{network: pod, pid: pod, ipc: node}},
		{"mqueue with host ipc", "fs.mqueue.queues_max", nsModes{network: pod, pid: pod, ipc: node}},
		{"uts with host network", "kernel.hostname", nsModes{network: node, pid: pod, ipc: pod}},
		{"not namespaced", "vm.swappiness", nsModes{network: pod, pid: pod, ipc: pod}},
		{"not namespaced kernel", "kernel.pid_max", nsModes{network: pod, pid: pod, ipc: pod}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := podSysctls(map[string]string{tt.sysctl: "1"}, tt.modes)
			wantInvalid(t, err, tt.sysctl)
		})
	}
}

func TestClampOOMScoreAdj(t *testing.T) {
	tests := []struct{ v, floor, want int }{
		{-998, -1000, -998},
		{-998, 0, 0},
		{-998, -500, -500},
		{1000, 0, 1000},
		{1500, 0, 1000},
		{-1500, -2000, -1000},
		{200, 300, 300},
	}
	for _, tt := range tests {
		if got := clampOOMScoreAdj(tt.v, tt.floor); got != tt.want {
			t.Errorf("clamp(%d, %d) = %d, want %d", tt.v, tt.floor, got, tt.want)
		}
	}
}

func TestApplyResources(t *testing.T) {
	spec := newSpec("/r")
	err := applyResources(spec, &runtimeapi.LinuxContainerResources{
		CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000, CpusetCpus: "0-1", CpusetMems: "0",
		MemoryLimitInBytes: 1 << 30, MemorySwapLimitInBytes: 2 << 30, OomScoreAdj: -997,
		HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 1 << 21}},
		Unified:        map[string]string{"memory.high": "900000000"},
	}, -500, "linux.resources")
	if err != nil {
		t.Fatal(err)
	}
	r := spec.Linux.Resources
	if *r.CPU.Shares != 512 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 || r.CPU.Cpus != "0-1" || r.CPU.Mems != "0" {
		t.Errorf("cpu = %+v", r.CPU)
	}
	if *r.Memory.Limit != 1<<30 || *r.Memory.Swap != 2<<30 {
		t.Errorf("memory = %+v", r.Memory)
	}
	if len(r.HugepageLimits) != 1 || r.HugepageLimits[0] != (specs.LinuxHugepageLimit{Pagesize: "2MB", Limit: 1 << 21}) {
		t.Errorf("hugepages = %+v", r.HugepageLimits)
	}
	if r.Unified["memory.high"] != "900000000" {
		t.Errorf("unified = %v", r.Unified)
	}
	if *spec.Process.OOMScoreAdj != -500 {
		t.Errorf("oom_score_adj = %d, want clamped to -500", *spec.Process.OOMScoreAdj)
	}
	if len(r.Devices) != 1 || r.Devices[0].Allow {
		t.Errorf("device rules disturbed: %+v", r.Devices)
	}

	// A memory limit without a swap limit: no swap (memory and swap
	// capped together at the limit) where the kernel accounts swap.
	spec = newSpec("/r")
	if err := applyResources(spec, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20}, -1000, "x"); err != nil {
		t.Fatal(err)
	}
	m := spec.Linux.Resources.Memory
	if spec.Linux.Resources.CPU != nil || swapAccounted() && (m.Swap == nil || *m.Swap != 1<<20) || !swapAccounted() && m.Swap != nil {
		t.Errorf("resources = %+v (swap accounted: %v)", spec.Linux.Resources, swapAccounted())
	}
	spec = newSpec("/r")
	if err := applyResources(spec, nil, 0, "x"); err != nil || spec.Process.OOMScoreAdj != nil {
		t.Errorf("nil resources: %v, oom %v", err, spec.Process.OOMScoreAdj)
	}
}

func TestApplyResourcesErrors(t *testing.T) {
	for _, tt := range []struct {
		r    *runtimeapi.LinuxContainerResources
		word string
	}{
		{&runtimeapi.LinuxContainerResources{CpuShares: -1}, "cpu_shares"},
		{&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -1}, "memory_limit_in_bytes"},
		{&runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 10, MemorySwapLimitInBytes: 5}, "memory_swap_limit_in_bytes"},
		{&runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{{Limit: 1}}}, "hugepage_limits[0]"},
	} {
		wantInvalid(t, applyResources(newSpec("/r"), tt.r, 0, "linux.resources"), "linux.resources."+tt.word)
	}
}

func TestDefaultRlimits(t *testing.T) {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	rl := defaultRlimits()
	if len(rl) != 1 || rl[0].Type != "RLIMIT_NOFILE" || rl[0].Hard != rl[0].Soft {
		t.Fatalf("rlimits = %+v", rl)
	}
	if rl[0].Hard > cur.Max || rl[0].Hard > maxNoFile {
		t.Errorf("nofile %d exceeds this process's hard limit %d or %d", rl[0].Hard, cur.Max, maxNoFile)
	}
}

func TestStopSignal(t *testing.T) {
	tests := []struct {
		in   string
		want syscall.Signal
	}{
		{"", unix.SIGTERM},
		{"SIGTERM", unix.SIGTERM},
		{"TERM", unix.SIGTERM},
		{"sigquit", unix.SIGQUIT},
		{" SIGINT ", unix.SIGINT},
		{"15", unix.SIGTERM},
		{"9", unix.SIGKILL},
		{"SIGKILL", unix.SIGKILL},
		{"SIGUSR1", unix.SIGUSR1},
		{"WINCH", unix.SIGWINCH},
		{"SIGIOT", unix.SIGABRT},
		{"SIGRTMIN", 34},
		{"SIGRTMIN+3", 37},
		{"RTMIN+30", 64},
		{"SIGRTMAX", 64},
		{"SIGRTMAX-2", 62},
	}
	for _, tt := range tests {
		got, err := StopSignal(v1.Config{StopSignal: tt.in})
		if err != nil || got != tt.want {
			t.Errorf("StopSignal(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"SIGFOO", "0", "65", "-1", "SIGRTMIN+31", "SIGRTMAX+1", "SIGRTMIN-1", "RTMIN+x"} {
		_, err := StopSignal(v1.Config{StopSignal: bad})
		wantInvalid(t, err, "StopSignal", bad)
	}
}
