package vm

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/ptr"
)

// The pods of TestCgroups. limits is Burstable (requests below limits),
// with 4 MiB of 2 MiB huge pages;
// oom outgrows its own memory limit; podoom outgrows its pod's
// (spec.resources), its container having none.
const (
	limitsPod = `apiVersion: v1
kind: Pod
metadata: {name: limits}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: limits
    image: berth.test/busybox:1
    imagePullPolicy: Never
    command: ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 3600"]
    resources:
      requests: {cpu: 250m, memory: 32Mi, hugepages-2Mi: 4Mi}
      limits: {cpu: 500m, memory: 64Mi, hugepages-2Mi: 4Mi}
`
	oomPod = `apiVersion: v1
kind: Pod
metadata: {name: oom}
spec:
  restartPolicy: Never
  containers:
  - name: oom
    image: berth.test/busybox:1
    imagePullPolicy: Never
    command: ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]
    resources: {limits: {memory: 16Mi}}
`
	podOOMPod = `apiVersion: v1
kind: Pod
metadata: {name: podoom}
spec:
  restartPolicy: Never
  resources: {limits: {memory: 24Mi}}
  containers:
  - name: podoom
    image: berth.test/busybox:1
    imagePullPolicy: Never
    command: ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]
`
	usernsPod = `apiVersion: v1
kind: Pod
metadata: {name: userns}
spec:
  hostUsers: false
  terminationGracePeriodSeconds: 0
  containers:
  - name: userns
    image: berth.test/busybox:1
    imagePullPolicy: Never
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
    - {name: host, mountPath: /host}
  volumes:
  - {name: scratch, emptyDir: {}}
  - {name: host, hostPath: {path: /var/lib/userns-test, type: DirectoryOrCreate}}
`
)

// The pods of the node pressure check: hog fills a Memory emptyDir by
// 16 MiB every half second, up to 480 MiB; quiet only sleeps.
const (
	hogPod = `apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: hog
    image: berth.test/busybox:1
    imagePullPolicy: Never
    command: ["sh", "-c", "i=0; while [ $i -lt 30 ]; do dd if=/dev/zero of=/m/$i bs=1M count=16 2>/dev/null; i=$((i+1)); sleep 0.5; done; exec sleep 3600"]
    volumeMounts: [{name: m, mountPath: /m}]
  volumes:
  - {name: m, emptyDir: {medium: Memory}}
`
	quietPod = `apiVersion: v1
kind: Pod
metadata: {name: quiet}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: quiet
    image: berth.test/busybox:1
    imagePullPolicy: Never
    command: ["sleep", "3600"]
`
)

// TestCgroups: berth on cgroup v2 under systemd with both cgroup drivers.
// With systemd's (the default there) the pods are slices of kubepods.slice
// made through systemd, the containers scopes in them; with cgroupfs
// directories below /kubepods. Either way the kernel's files hold the
// limits kubelet derives from requests and limits, the pod's cgroup the
// pod-level ones, an OOM kill (by the container's limit or the pod's) is
// reported OOMKilled, the CRI's stats come from cpu.stat and memory.stat,
// and the pods' cgroups go with them. A driver that does not match the
// sandboxes berth has is refused at start.
func TestCgroups(t *testing.T) {
	skipUnlessVM(t)
	g := newGuest(t, "guest-cgroups.sh")
	g.write("limits.yaml", limitsPod)
	g.write("oom.yaml", oomPod)
	g.write("podoom.yaml", podOOMPod)
	g.write("userns.yaml", usernsPod)
	g.write("hog.yaml", hogPod)
	g.write("quiet.yaml", quietPod)
	res := g.boot()
	weight := func(shares uint64) string {
		return strconv.FormatUint(cgroups.ConvertCPUSharesToCgroupV2Value(shares), 10)
	}
	for _, d := range []string{"systemd", "cgroupfs"} {
		t.Run(d, func(t *testing.T) {
			expect := map[string]string{
				"start":  "0",
				"driver": d,
				// limits: 64Mi, 500m, a 250m request (256 shares), and no
				// swap beyond the memory limit.
				"container_memory.max":      "67108864",
				"container_memory.swap.max": "0",
				"container_cpu.max":         "50000 100000",
				"container_cpu.weight":      weight(256),
				"container_pids.max":        "max",
				"container_hugetlb.2MB.max": "4194304",
				"pod_hugetlb.2MB.max":       "4194304",
				"pod_memory.max":            "67108864",
				"pod_cpu.max":               "50000 100000",
				"pod_cpu.weight":            weight(256),
				"cgroupns":                  "own",
				"cgroup_inside":             "0::/",
				"pods_gone":                 "0",
				"pod_cgroup_after":          "gone",
			}
			if d == "systemd" {
				expect["pod_unit_memory"] = "67108864"
				expect["container_unit"] = "active"
				expect["pod_unit_after"] = "inactive"
			}
			got := map[string]string{}
			for k := range expect {
				got[k] = res[d+"_"+k]
			}
			want(t, got, expect)
			c := res[d+"_container_cgroup"]
			wantCgroup := "/kubepods/burstable/pod"
			if d == "systemd" {
				wantCgroup = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
			}
			if !strings.HasPrefix(c, wantCgroup) {
				t.Errorf("the container's cgroup is %s, want it below %s<uid>", c, wantCgroup)
			}
			if d == "systemd" && !strings.HasSuffix(c, ".scope") {
				t.Errorf("the container's cgroup %s is not a systemd scope", c)
			}
			for _, pod := range []string{"oom", "podoom"} {
				if reason, code := g.ended(d + "-" + pod + ".json"); reason != "OOMKilled" || code != 137 {
					t.Errorf("%s: the container ended with reason %q, exit code %d; want OOMKilled, 137", pod, reason, code)
				}
			}
			g.checkStats(t, d, res[d+"_psi"])
			// userns (hostUsers: false) on the guest's kernel: its root is a
			// block of host IDs of its own, and owns its image and volumes
			// through idmapped mounts; what it writes to a hostPath belongs
			// to root on disk.
			var first, n int
			if _, err := fmt.Sscanf(res[d+"_userns_map"], "0 %d %d", &first, &n); err != nil || first < 65536 || first%65536 != 0 || n != 65536 {
				t.Errorf("userns: uid_map %q, want 0 mapped to a block of 65536 host IDs above the host's", res[d+"_userns_map"])
			}
			want(t, map[string]string{"owners": res[d+"_userns_owners"], "written": res[d+"_userns_written"]},
				map[string]string{"owners": "0:0 0:0 0:0 ", "written": "0:0"})
		})
	}
	if res["mismatch_start"] == "0" {
		t.Error("berthd started with the systemd driver while it had pods of the cgroupfs driver")
	}
	if m, _ := os.ReadFile(filepath.Join(g.share, "mismatch.txt")); !strings.Contains(string(m), "--cgroup-driver=cgroupfs") {
		t.Errorf("the refusal of a mismatched driver does not say what to do: %q", m)
	}
	want(t, res, map[string]string{"back_start": "0", "done": "yes"})
	g.checkEviction(t, res)
	checkSwap(t, res)
}

// checkSwap: memory.swap.max per the node's swap behaviour, as kubelet
// sets it: none under NoSwap, also without a memory limit; under
// LimitedSwap the Burstable limits container's request (32 MiB) share of
// the node's memory, times its swap, and none for the BestEffort quiet.
func checkSwap(t *testing.T, res map[string]string) {
	t.Helper()
	want(t, res, map[string]string{"noswap_unlimited": "0", "swap_on": "0", "swap_start": "0", "swap_quiet": "0"})
	mem, _ := strconv.ParseInt(res["swap_memtotal"], 10, 64)
	swap, _ := strconv.ParseInt(res["swap_swaptotal"], 10, 64)
	got, err := strconv.ParseInt(res["swap_limits"], 10, 64)
	if expect := int64(float64(32<<20) / float64(mem) * float64(swap)); err != nil || expect == 0 || diff(uint64(got), uint64(expect)) > 4096 {
		t.Errorf("LimitedSwap: the Burstable container's memory.swap.max is %q, want about %d (32Mi of %d memory, times %d swap)", res["swap_limits"], expect, mem, swap)
	}
}

// checkEviction: the memory hog was evicted as kubelet evicts, for
// memory, and the quiet pod beside it kept running.
func (g *guest) checkEviction(t *testing.T, res map[string]string) {
	t.Helper()
	want(t, res, map[string]string{"evict_start": "0", "evict_evicted": "0"})
	data, err := os.ReadFile(filepath.Join(g.share, "evict-pods.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pods corev1.PodList
	if err := json.Unmarshal(data, &pods); err != nil {
		t.Fatalf("berthctl pods -o json: %v\n%s", err, data)
	}
	phases := map[string]corev1.PodStatus{}
	for _, p := range pods.Items {
		phases[strings.TrimSuffix(p.Name, "-berth-vm")] = p.Status
	}
	hog, quiet := phases["hog"], phases["quiet"]
	if hog.Phase != corev1.PodFailed || hog.Reason != "Evicted" ||
		!strings.HasPrefix(hog.Message, "The node was low on resource: memory. Threshold quantity: "+res["evict_threshold_mi"]+"Mi") {
		t.Errorf("the memory hog: phase %s, reason %q, message %q; want Failed, Evicted for memory", hog.Phase, hog.Reason, hog.Message)
	}
	if quiet.Phase != corev1.PodRunning {
		t.Errorf("the quiet pod beside the hog is %s (%s), want Running", quiet.Phase, quiet.Message)
	}
	t.Logf("memory.available %s Mi at the start, threshold %s Mi; the hog: %s", res["evict_available_mi"], res["evict_threshold_mi"], hog.Message)
}

// readJSON decodes a CRI answer crictl wrote to the share.
func (g *guest) readJSON(name string, m proto.Message) {
	g.t.Helper()
	data, err := os.ReadFile(filepath.Join(g.share, name))
	if err == nil {
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, m)
	}
	if err != nil {
		g.t.Errorf("%s: %v\n%s", name, err, data)
	}
}

// ended is how a container ended, from what `crictl inspect` wrote to
// the share (crictl's own rendering of the CRI's status).
func (g *guest) ended(name string) (reason string, exitCode int) {
	g.t.Helper()
	var out struct {
		Status struct {
			Reason   string
			ExitCode int
		}
	}
	data, err := os.ReadFile(filepath.Join(g.share, name))
	if err == nil {
		err = json.Unmarshal(data, &out)
	}
	if err != nil {
		g.t.Errorf("%s: %v\n%.2000s", name, err, data)
	}
	return out.Status.Reason, out.Status.ExitCode
}

// checkStats: the CRI's container and pod stats of the limits pod, read
// against the kernel's own figures taken right after them.
func (g *guest) checkStats(t *testing.T, d, psi string) {
	var cs runtimeapi.ListContainerStatsResponse
	g.readJSON(d+"-stats.json", &cs)
	if len(cs.GetStats()) != 1 {
		t.Fatalf("crictl stats: %d containers, want 1", len(cs.GetStats()))
	}
	st := cs.GetStats()[0]
	if st.GetCpu().GetUsageCoreNanoSeconds().GetValue() == 0 {
		t.Error("crictl stats: no CPU used")
	}
	ws := st.GetMemory().GetWorkingSetBytes().GetValue()
	current, inactive := g.memoryFigures(d)
	// working set = memory.current - inactive_file, as kubelet computes
	// it; the kernel's figures were read a moment later, so a page or so
	// may differ.
	kernel := current - inactive
	if ws == 0 || ws > 64<<20 || diff(ws, kernel) > 1<<20 {
		t.Errorf("crictl stats: working set %d, want memory.current %d - inactive_file %d = %d", ws, current, inactive, kernel)
	}
	if !strings.HasPrefix(psi, "some ") {
		t.Logf("no PSI on this kernel (cpu.pressure: %s)", psi)
	} else if st.GetCpu().GetPsi() == nil || st.GetMemory().GetPsi() == nil {
		t.Errorf("the kernel has PSI (%s) but crictl stats shows none", psi)
	}
	// The stats summary and the cAdvisor metrics of kubelet's read-only
	// port agree with the kernel as well.
	data, _ := os.ReadFile(filepath.Join(g.share, d+"-summary.json"))
	var summary statsapi.Summary
	if err := json.Unmarshal(data, &summary); err != nil {
		t.Errorf("/stats/summary: %v\n%.500s", err, data)
	}
	var sc *statsapi.ContainerStats
	for _, p := range summary.Pods {
		for i, c := range p.Containers {
			if p.PodRef.Name == "limits-berth-vm" && c.Name == "limits" {
				sc = &p.Containers[i]
			}
		}
	}
	if sc == nil || sc.Memory == nil || sc.CPU == nil {
		t.Errorf("/stats/summary has no stats of the limits container:\n%.1000s", data)
	} else if sws := ptr.Deref(sc.Memory.WorkingSetBytes, 0); sws == 0 || diff(sws, kernel) > 1<<20 || ptr.Deref(sc.CPU.UsageCoreNanoSeconds, 0) == 0 {
		t.Errorf("/stats/summary: working set %d (the kernel's %d), CPU %d ns", sws, kernel, ptr.Deref(sc.CPU.UsageCoreNanoSeconds, 0))
	}
	if ptr.Deref(summary.Node.Memory.AvailableBytes, 0) == 0 {
		t.Errorf("/stats/summary: the node's memory %+v", summary.Node.Memory)
	}
	data, _ = os.ReadFile(filepath.Join(g.share, d+"-cadvisor.txt"))
	var cws uint64
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "container_memory_working_set_bytes{") && strings.Contains(line, `container="limits"`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			cws = uint64(v)
		}
	}
	if cws == 0 || diff(cws, kernel) > 1<<20 {
		t.Errorf("/metrics/cadvisor: the limits container's working set %d, the kernel's %d\n%.500s", cws, kernel, data)
	}
	var ps runtimeapi.ListPodSandboxStatsResponse
	g.readJSON(d+"-statsp.json", &ps)
	if len(ps.GetStats()) != 1 {
		t.Fatalf("crictl statsp: %d pods, want 1", len(ps.GetStats()))
	}
	pl := ps.GetStats()[0].GetLinux()
	if pl.GetCpu().GetUsageCoreNanoSeconds().GetValue() == 0 || pl.GetMemory().GetWorkingSetBytes().GetValue() == 0 || len(pl.GetContainers()) != 1 {
		t.Errorf("crictl statsp: cpu %v, memory %v, %d containers", pl.GetCpu(), pl.GetMemory(), len(pl.GetContainers()))
	}
}

// memoryFigures are memory.current and memory.stat's inactive_file of the
// limits container, as the guest read them.
func (g *guest) memoryFigures(d string) (current, inactive uint64) {
	g.t.Helper()
	data, _ := os.ReadFile(filepath.Join(g.share, d+"-memory.current"))
	current, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		g.t.Errorf("memory.current: %q", data)
	}
	data, _ = os.ReadFile(filepath.Join(g.share, d+"-memory.stat"))
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "inactive_file "); ok {
			fmt.Sscan(v, &inactive)
		}
	}
	return current, inactive
}

func diff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}
