package e2e

import (
	"bytes"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"

	"github.com/berth-project/berth/test/testutil"
)

// defaultCgroupParent is where berth puts pods that name no cgroup_parent
// (cgroupfs driver).
const defaultCgroupParent = "/berth"

// cgroupHierarchies are the roots of the mounted cgroup hierarchies: each
// v1 controller directory (symlinked aliases such as cpu -> cpu,cpuacct
// are skipped, their target is listed), or the unified root on v2.
func cgroupHierarchies() []string {
	const root = "/sys/fs/cgroup"
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return []string{root}
	}
	entries, _ := os.ReadDir(root)
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join(root, e.Name()))
		}
	}
	return out
}

// cgroupDirsNamed lists the cgroup directories below parent, in every
// hierarchy, that are named after one of ids.
func cgroupDirsNamed(parent string, ids ...string) []string {
	var found []string
	for _, h := range cgroupHierarchies() {
		filepath.WalkDir(filepath.Join(h, parent), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // an absent parent has nothing below it
			}
			if d.IsDir() && slices.Contains(ids, d.Name()) {
				found = append(found, p)
			}
			return nil
		})
	}
	return found
}

// processesWithArg lists the pids whose command line contains arg.
func processesWithArg(arg string) []int {
	procs, _ := os.ReadDir("/proc")
	var out []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(arg)) {
			out = append(out, pid)
		}
	}
	return out
}

// leasesOf lists host-local's lease files in dir held by sandbox id (a
// lease file is named after the IP and holds the container ID).
func leasesOf(dir, id string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil && strings.Contains(string(data), id) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// leasedIPs lists the IPs host-local has leased in dir.
func leasedIPs(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			out = append(out, e.Name())
		}
	}
	return out
}

// existing returns those of paths that exist.
func existing(paths ...string) []string {
	var out []string
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// podTraces is everything a running pod holds on the node, by kind; a
// removed pod must hold nothing.
func (e *env) podTraces(podID string, ctrIDs ...string) map[string][]string {
	d := e.d
	ids := append([]string{podID}, ctrIDs...)
	var runcState, records []string
	for _, id := range ids {
		runcState = append(runcState, filepath.Join(d.State, "runc", id))
	}
	records = append(records, filepath.Join(d.Root, "sandboxes", podID), filepath.Join(d.State, "sandboxes", podID))
	for _, id := range ctrIDs {
		records = append(records, filepath.Join(d.Root, "containers", id))
	}
	return map[string][]string{
		"IP lease":           leasesOf(d.IPAMDir(), podID),
		"netns file":         existing(filepath.Join(d.State, "netns", podID)),
		"mount":              harness.MountsBelow(d.Dir),
		"cgroup":             cgroupDirsNamed(defaultCgroupParent, ids...),
		"runc state":         existing(runcState...),
		"record":             existing(records...),
		"shim socket":        existing(filepath.Join(d.State, "shims", podID+".sock")),
		"shim process (pid)": pidStrings(processesWithArg(filepath.Join(d.State, "shims", podID+".sock"))),
		"iptables rule":      natRulesOf(podID),
		"veth on the bridge": bridgePorts(d.Bridge),
	}
}

// natRulesOf lists the NAT rules the CNI plugins made for sandbox id (they
// carry its ID in a comment).
func natRulesOf(id string) []string {
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		return []string{"iptables-save: " + err.Error()}
	}
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, id) {
			rules = append(rules, line)
		}
	}
	return rules
}

// bridgePorts lists the interfaces attached to a host bridge.
func bridgePorts(bridge string) []string {
	entries, _ := os.ReadDir(filepath.Join("/sys/class/net", bridge, "brif"))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func pidStrings(pids []int) []string {
	var out []string
	for _, p := range pids {
		out = append(out, strconv.Itoa(p))
	}
	return out
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// StopPodSandbox releases the pod's network; RemovePodSandbox then leaves
// nothing of the pod on the node: no lease, netns, mount, cgroup, shim,
// runc state or record. Both are idempotent.
func TestSandboxTeardownLeavesNothingBehind(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("teardown")
	podID := e.runPod(pod)
	c1 := e.start(podID, pod, containerConfig("one", []string{"sleep", "3600"}))
	c2 := e.start(podID, pod, containerConfig("two", []string{"sleep", "3600"}))
	ip := e.podStatus(podID).GetNetwork().GetIp()
	if ip == "" {
		t.Fatal("running pod has no IP")
	}

	// While the pod runs, every kind of trace is there: the checks below
	// look in the right places.
	running := e.podTraces(podID, c1, c2)
	for _, kind := range sortedKeys(running) {
		if len(running[kind]) == 0 {
			t.Errorf("running pod: no %s found; the teardown check would be vacuous", kind)
		}
	}
	if _, err := os.Stat(filepath.Join(e.d.IPAMDir(), ip)); err != nil {
		t.Errorf("running pod: lease file of %s: %v", ip, err)
	}
	if t.Failed() {
		t.FailNow()
	}

	c := ctx(t)
	for i := 0; i < 2; i++ {
		if _, err := e.rt.StopPodSandbox(c, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Fatalf("StopPodSandbox #%d: %v", i+1, err)
		}
	}
	// Stopped: the network is released, the record stays.
	st := e.podStatus(podID)
	if st.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || st.GetNetwork().GetIp() != "" {
		t.Errorf("stopped pod: state %v ip %q, want NOTREADY without IP", st.GetState(), st.GetNetwork().GetIp())
	}
	for _, id := range []string{c1, c2} {
		if s := e.status(id); s.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
			t.Errorf("container %s after StopPodSandbox: %v, want EXITED", s.GetMetadata().GetName(), s.GetState())
		}
	}
	stopped := e.podTraces(podID, c1, c2)
	for _, kind := range []string{"IP lease", "netns file", "iptables rule", "veth on the bridge"} {
		if len(stopped[kind]) > 0 {
			t.Errorf("stopped pod still holds %s: %v", kind, stopped[kind])
		}
	}
	if _, err := os.Stat(filepath.Join(e.d.IPAMDir(), ip)); !os.IsNotExist(err) {
		t.Errorf("stopped pod: lease file of %s still there (%v)", ip, err)
	}

	for i := 0; i < 2; i++ {
		if _, err := e.rt.RemovePodSandbox(c, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Fatalf("RemovePodSandbox #%d: %v", i+1, err)
		}
	}
	if _, err := e.rt.StopPodSandbox(c, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Errorf("StopPodSandbox of a removed pod: %v", err)
	}

	// The shim answers its shutdown request before it exits: wait for it.
	shimSocket := filepath.Join(e.d.State, "shims", podID+".sock")
	testutil.Eventually(t, "the pod's shim to exit", func() bool { return len(processesWithArg(shimSocket)) == 0 })
	left := e.podTraces(podID, c1, c2)
	for _, kind := range sortedKeys(left) {
		if len(left[kind]) > 0 {
			t.Errorf("removed pod left %s: %v", kind, left[kind])
		}
	}

	_, err := e.rt.PodSandboxStatus(c, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if status.Code(err) != codes.NotFound {
		t.Errorf("PodSandboxStatus of a removed pod: %v, want NotFound", err)
	}
	for _, id := range []string{c1, c2} {
		_, err := e.rt.ContainerStatus(c, &runtimeapi.ContainerStatusRequest{ContainerId: id})
		if status.Code(err) != codes.NotFound {
			t.Errorf("ContainerStatus of a removed pod's container: %v, want NotFound", err)
		}
	}
	pods, err := e.rt.ListPodSandbox(c, &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(pods.GetItems()) != 0 {
		t.Errorf("ListPodSandbox after remove = %v, %v; want none", pods.GetItems(), err)
	}
	ctrs, err := e.rt.ListContainers(c, &runtimeapi.ListContainersRequest{})
	if err != nil || len(ctrs.GetContainers()) != 0 {
		t.Errorf("ListContainers after remove = %v, %v; want none", ctrs.GetContainers(), err)
	}
}

// RemovePodSandbox of a running pod, without StopPodSandbox first, stops
// and removes everything too, for a pod on the pod network and for a
// host-network pod (which has no netns or IP of its own).
func TestSandboxRemoveRunningLeavesNothingBehind(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []podOpt
	}{
		{"pod network", nil},
		{"host network", []podOpt{withHostNetwork()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			pod := e.podConfig("remove-running", tc.opts...)
			podID := e.runPod(pod)
			id := e.start(podID, pod, containerConfig("one", []string{"sleep", "3600"}))
			want := []string{"mount", "cgroup", "runc state", "record", "shim socket", "shim process (pid)"}
			if tc.opts == nil {
				want = append(want, "IP lease", "netns file", "iptables rule", "veth on the bridge")
			}
			running := e.podTraces(podID, id)
			for _, kind := range want {
				if len(running[kind]) == 0 {
					t.Errorf("running pod: no %s found; the teardown check would be vacuous", kind)
				}
			}
			for i := 0; i < 2; i++ {
				if _, err := e.rt.RemovePodSandbox(ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
					t.Fatalf("RemovePodSandbox #%d: %v", i+1, err)
				}
			}
			if _, err := e.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
				t.Errorf("StopPodSandbox of a removed pod: %v", err)
			}
			shimSocket := filepath.Join(e.d.State, "shims", podID+".sock")
			testutil.Eventually(t, "the pod's shim to exit", func() bool { return len(processesWithArg(shimSocket)) == 0 })
			left := e.podTraces(podID, id)
			for _, kind := range sortedKeys(left) {
				if len(left[kind]) > 0 {
					t.Errorf("removed pod left %s: %v", kind, left[kind])
				}
			}
		})
	}
}

// A pod that outlived a crash of berthd is torn down as completely by the
// restarted daemon, which knows it only from its records.
func TestSandboxTeardownAfterDaemonCrash(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("teardown-crash")
	podID := e.runPod(pod)
	c1 := e.start(podID, pod, containerConfig("one", []string{"sleep", "3600"}))
	c2 := e.create(podID, pod, containerConfig("created", []string{"sleep", "3600"}))
	e.restart()

	if st := e.podStatus(podID); st.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("pod after the restart: %v, want READY", st.GetState())
	}
	e.removePod(podID)
	shimSocket := filepath.Join(e.d.State, "shims", podID+".sock")
	testutil.Eventually(t, "the pod's shim to exit", func() bool { return len(processesWithArg(shimSocket)) == 0 })
	left := e.podTraces(podID, c1, c2)
	for _, kind := range sortedKeys(left) {
		if len(left[kind]) > 0 {
			t.Errorf("removed pod left %s: %v", kind, left[kind])
		}
	}
}

// The pod's hostname, /etc/hosts and /etc/resolv.conf are what its config
// says; a pod without DNS config gets the node's resolv.conf.
func TestSandboxHostnameHostsAndDNS(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("named", withDNSConfig(
		[]string{"10.96.0.10", "10.96.0.11"},
		[]string{"e2e.svc.cluster.local", "cluster.local"},
		[]string{"ndots:5", "timeout:2"}))
	pod.Hostname = "named-host"
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"}))
	ip := e.podStatus(podID).GetNetwork().GetIp()

	if out, _, _ := e.exec(id, "hostname"); out != "named-host\n" {
		t.Errorf("hostname = %q, want named-host", out)
	}
	if out, _, _ := e.exec(id, "cat", "/etc/hostname"); out != "named-host\n" {
		t.Errorf("/etc/hostname = %q, want named-host", out)
	}
	if out, _, _ := e.exec(id, "sh", "-c", "echo $HOSTNAME"); out != "named-host\n" {
		t.Errorf("$HOSTNAME = %q, want named-host", out)
	}

	hosts, _, _ := e.exec(id, "cat", "/etc/hosts")
	var hasLocalhost, hasPod bool
	for _, line := range strings.Split(hosts, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		hasLocalhost = hasLocalhost || (f[0] == "127.0.0.1" && slices.Contains(f[1:], "localhost"))
		hasPod = hasPod || (f[0] == ip && slices.Contains(f[1:], "named-host"))
	}
	if !hasLocalhost || !hasPod {
		t.Errorf("/etc/hosts lacks 127.0.0.1 localhost (%v) or %s named-host (%v):\n%s", hasLocalhost, ip, hasPod, hosts)
	}

	resolv, _, _ := e.exec(id, "cat", "/etc/resolv.conf")
	for _, want := range []string{
		"nameserver 10.96.0.10\n", "nameserver 10.96.0.11\n",
		"search e2e.svc.cluster.local cluster.local\n", "options ndots:5 timeout:2\n",
	} {
		if !strings.Contains(resolv, want) {
			t.Errorf("/etc/resolv.conf lacks %q:\n%s", want, resolv)
		}
	}

	// A bad DNS config is refused, naming the field, and the network
	// already set up for that pod is released again.
	bad := e.podConfig("bad-dns", withDNSConfig([]string{"not-an-ip"}, nil, nil))
	_, err := e.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: bad})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "dns_config.servers[0]") {
		t.Errorf("RunPodSandbox with a bad DNS server: %v; want InvalidArgument naming dns_config.servers[0]", err)
	}
	if leases := leasedIPs(e.d.IPAMDir()); len(leases) != 1 || leases[0] != ip {
		t.Errorf("after a refused pod, leases = %v; want only %s", leases, ip)
	}

	plain := e.podConfig("plain")
	plainID := e.runPod(plain)
	pid := e.start(plainID, plain, containerConfig("app", []string{"sleep", "3600"}))
	host, _ := os.ReadFile("/etc/resolv.conf")
	if out, _, _ := e.exec(pid, "cat", "/etc/resolv.conf"); out != string(host) {
		t.Errorf("resolv.conf of a pod without DNS config = %q, want the node's %q", out, host)
	}
}

// Each pod has its own /dev/shm tmpfs, shared by its containers only.
func TestSandboxShmIsPerPod(t *testing.T) {
	e := newEnv(t)
	a := e.podConfig("shm-a")
	aID := e.runPod(a)
	a1 := e.start(aID, a, containerConfig("one", []string{"sleep", "3600"}))
	a2 := e.start(aID, a, containerConfig("two", []string{"sleep", "3600"}))
	b := e.podConfig("shm-b")
	bID := e.runPod(b)
	b1 := e.start(bID, b, containerConfig("one", []string{"sleep", "3600"}))

	mounts, _, _ := e.exec(a1, "cat", "/proc/mounts")
	var isTmpfs bool
	for _, line := range strings.Split(mounts, "\n") {
		f := strings.Fields(line)
		isTmpfs = isTmpfs || (len(f) > 2 && f[1] == "/dev/shm" && f[2] == "tmpfs")
	}
	if !isTmpfs {
		t.Errorf("/dev/shm is not a tmpfs in the container:\n%s", mounts)
	}

	marker := "berth-e2e-" + aID[:12]
	if _, stderr, code := e.exec(a1, "sh", "-c", "echo from-a > /dev/shm/"+marker); code != 0 {
		t.Fatalf("write /dev/shm: exit %d: %s", code, stderr)
	}
	if out, _, code := e.exec(a2, "cat", "/dev/shm/"+marker); code != 0 || out != "from-a\n" {
		t.Errorf("second container of the pod reads %q (exit %d), want from-a", out, code)
	}
	if _, _, code := e.exec(b1, "test", "-e", "/dev/shm/"+marker); code == 0 {
		t.Errorf("another pod sees the first pod's /dev/shm/%s", marker)
	}
	if _, err := os.Stat(filepath.Join("/dev/shm", marker)); err == nil {
		t.Errorf("the node's /dev/shm has the pod's %s", marker)
	}
}

// Pod sysctls are set in the pod's namespaces, not on the node.
func TestSandboxSysctls(t *testing.T) {
	const (
		portStart = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
		rmid      = "/proc/sys/kernel/shm_rmid_forced"
	)
	hostPort, _ := os.ReadFile(portStart)
	hostRmid, _ := os.ReadFile(rmid)
	e := newEnv(t)
	pod := e.podConfig("sysctl", withPodSysctls(map[string]string{
		"net.ipv4.ip_unprivileged_port_start": "0",
		"kernel/shm_rmid_forced":              "1", // the slash spelling Kubernetes allows
	}))
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"}))

	if out, _, _ := e.exec(id, "cat", portStart); out != "0\n" {
		t.Errorf("%s in the container = %q, want 0", portStart, out)
	}
	if out, _, _ := e.exec(id, "cat", rmid); out != "1\n" {
		t.Errorf("%s in the container = %q, want 1", rmid, out)
	}

	// Sysctls that would change the node are refused, naming them.
	for name, opts := range map[string][]podOpt{
		"net.ipv4.ip_unprivileged_port_start": {withHostNetwork()},
		"kernel.panic":                        nil,
	} {
		bad := e.podConfig("bad-sysctl", append(opts, withPodSysctls(map[string]string{name: "0"}))...)
		_, err := e.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: bad})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), name) {
			t.Errorf("RunPodSandbox with sysctl %s (%d options): %v; want InvalidArgument naming it", name, len(opts), err)
		}
	}
	if pods, err := e.rt.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{}); err != nil || len(pods.GetItems()) != 1 {
		t.Errorf("after refused pods, ListPodSandbox = %v, %v; want only the first pod", pods.GetItems(), err)
	}
	if now, _ := os.ReadFile(portStart); !bytes.Equal(now, hostPort) {
		t.Errorf("the node's %s changed from %q to %q", portStart, hostPort, now)
	}
	if now, _ := os.ReadFile(rmid); !bytes.Equal(now, hostRmid) {
		t.Errorf("the node's %s changed from %q to %q", rmid, hostRmid, now)
	}
}

// A pod's cgroup_parent holds its containers' cgroups; the parent
// directories berth created go with the pod.
func TestSandboxCgroupParent(t *testing.T) {
	top := "/berth-e2e-" + strconv.FormatInt(seq.Add(1), 10) + "-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() {
		// Whatever a failure left, innermost first.
		for _, h := range cgroupHierarchies() {
			var dirs []string
			filepath.WalkDir(filepath.Join(h, top), func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				os.Remove(dirs[i])
			}
		}
	})
	e := newEnv(t)
	pod := e.podConfig("cgparent")
	parent := top + "/pod" + pod.GetMetadata().GetUid()
	withCgroupParent(parent)(pod)
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"}))

	for _, dir := range []string{
		filepath.Join("/sys/fs/cgroup/memory", parent, id),
		filepath.Join("/sys/fs/cgroup/memory", parent, podID),
	} {
		procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil || len(strings.TrimSpace(string(procs))) == 0 {
			t.Errorf("cgroup %s: processes %q, %v; want the running process", dir, procs, err)
		}
	}
	self, _, _ := e.exec(id, "cat", "/proc/self/cgroup")
	var inParent bool
	for _, line := range strings.Split(self, "\n") {
		// hierarchy-ID:controllers:path
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && slices.Contains(strings.Split(f[1], ","), "memory") {
			inParent = f[2] == parent+"/"+id
		}
	}
	if !inParent {
		t.Errorf("container's memory cgroup is not %s/%s:\n%s", parent, id, self)
	}

	e.removePod(podID)
	for _, h := range cgroupHierarchies() {
		if _, err := os.Stat(filepath.Join(h, top)); !os.IsNotExist(err) {
			t.Errorf("cgroup parent %s berth created is still there after RemovePodSandbox (%v)", filepath.Join(h, top), err)
		}
	}
}

// With pid=POD the containers and the pause process share one PID
// namespace; with CONTAINER, what kubelet asks for unless the pod sets
// shareProcessNamespace, each container has its own.
func TestSandboxPIDNamespace(t *testing.T) {
	e := newEnv(t)
	shared := e.podConfig("pid-shared", withPodPID())
	sharedID := e.runPod(shared)
	e.start(sharedID, shared, containerConfig("first", []string{"sleep", "3601"}))
	second := e.start(sharedID, shared, containerConfig("second", []string{"sleep", "3602"}))
	if out, _, _ := e.exec(second, "cat", "/proc/1/cmdline"); out != "/pause\x00" {
		t.Errorf("shared PID namespace: PID 1 is %q, want the pause process", out)
	}
	if ps, _, _ := e.exec(second, "ps"); !strings.Contains(ps, "sleep 3601") {
		t.Errorf("shared PID namespace: the other container's process is not visible:\n%s", ps)
	}

	private := e.podConfig("pid-private", withPodPrivatePID())
	privateID := e.runPod(private)
	// Kubelet repeats the pod's modes in each container's config; a
	// container without them inherits the pod's.
	inherits := e.start(privateID, private, containerConfig("inherits", []string{"sleep", "3603"}))
	explicit := e.start(privateID, private, containerConfig("explicit", []string{"sleep", "3604"}, withContainerPID()))
	for id, own := range map[string]string{inherits: "3603", explicit: "3604"} {
		if out, _, _ := e.exec(id, "cat", "/proc/1/cmdline"); out != "sleep\x00"+own+"\x00" {
			t.Errorf("private PID namespace: PID 1 is %q, want the container's own sleep %s", out, own)
		}
		if ps, _, _ := e.exec(id, "ps"); strings.Count(ps, "sleep 360") != 1 || strings.Contains(ps, "/pause") {
			t.Errorf("private PID namespace: other processes of the pod are visible:\n%s", ps)
		}
	}
}

// A host-network pod has no CNI IP and sees the node's network namespace,
// hostname and /etc/hosts.
func TestSandboxHostNetwork(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("hostnet", withHostNetwork())
	podID := e.runPod(pod)
	id := e.start(podID, pod, containerConfig("app", []string{"sleep", "3600"}))

	if n := e.podStatus(podID).GetNetwork(); n.GetIp() != "" || len(n.GetAdditionalIps()) != 0 {
		t.Errorf("host-network pod has pod IPs: %v", n)
	}
	if leases, _ := os.ReadDir(e.d.IPAMDir()); len(leases) != 0 {
		t.Errorf("host-network pod took IP leases: %v", leases)
	}
	hostNS, err := nsInode("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if out, _, _ := e.exec(id, "stat", "-L", "-c", "%i", "/proc/self/ns/net"); strings.TrimSpace(out) != hostNS {
		t.Errorf("container's network namespace inode = %q, want the node's %s", strings.TrimSpace(out), hostNS)
	}
	hostName, _ := os.Hostname()
	if out, _, _ := e.exec(id, "hostname"); out != hostName+"\n" {
		t.Errorf("hostname = %q, want the node's %q", out, hostName)
	}
	if out, _, _ := e.exec(id, "cat", "/proc/net/dev"); !slices.Contains(ifaceNames(out), defaultRouteIface()) {
		t.Errorf("container does not see the node's interface %q:\n%s", defaultRouteIface(), out)
	}
	hostHosts, _ := os.ReadFile("/etc/hosts")
	if out, _, _ := e.exec(id, "cat", "/etc/hosts"); out != string(hostHosts) {
		t.Errorf("/etc/hosts = %q, want the node's %q", out, hostHosts)
	}
}

// nsInode is the inode number of a namespace file, which identifies the
// namespace.
func nsInode(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	return strconv.FormatUint(fi.Sys().(*syscall.Stat_t).Ino, 10), nil
}

// ifaceNames parses the interface names of /proc/net/dev.
func ifaceNames(procNetDev string) []string {
	var out []string
	for _, line := range strings.Split(procNetDev, "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok && !strings.Contains(name, "|") {
			out = append(out, strings.TrimSpace(name))
		}
	}
	return out
}

// defaultRouteIface is the node's interface of its IPv4 default route,
// else "lo".
func defaultRouteIface() string {
	data, _ := os.ReadFile("/proc/net/route")
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == "00000000" {
			return f[0]
		}
	}
	return "lo"
}

// ListPodSandbox filters by ID prefix, state and labels, and by all of
// them at once.
func TestSandboxListFilters(t *testing.T) {
	e := newEnv(t)
	front1 := e.runPod(e.podConfig("front1", withPodLabels(map[string]string{"tier": "front", "app": "one"})))
	front2 := e.runPod(e.podConfig("front2", withPodLabels(map[string]string{"tier": "front", "app": "two"})))
	back := e.runPod(e.podConfig("back", withPodLabels(map[string]string{"tier": "back", "app": "one"})))
	if _, err := e.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: back}); err != nil {
		t.Fatal(err)
	}
	ready := &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}
	notReady := &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}

	for _, tc := range []struct {
		name   string
		filter *runtimeapi.PodSandboxFilter
		want   []string
	}{
		{"no filter", nil, []string{front1, front2, back}},
		{"full ID", &runtimeapi.PodSandboxFilter{Id: front2}, []string{front2}},
		{"ID prefix", &runtimeapi.PodSandboxFilter{Id: front1[:12]}, []string{front1}},
		{"unknown ID", &runtimeapi.PodSandboxFilter{Id: "ffffffffffff" + front1[12:]}, nil},
		{"ready", &runtimeapi.PodSandboxFilter{State: ready}, []string{front1, front2}},
		{"not ready", &runtimeapi.PodSandboxFilter{State: notReady}, []string{back}},
		{"one label", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"tier": "front"}}, []string{front1, front2}},
		{"two labels", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"tier": "front", "app": "one"}}, []string{front1}},
		{"label and state", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "one"}, State: notReady}, []string{back}},
		{"ID and state disagree", &runtimeapi.PodSandboxFilter{Id: front1, State: notReady}, nil},
		{"label matching none", &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"tier": "db"}}, nil},
	} {
		resp, err := e.rt.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{Filter: tc.filter})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for _, p := range resp.GetItems() {
			got = append(got, p.GetId())
		}
		sort.Strings(got)
		want := slices.Clone(tc.want)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, want)
		}
	}

	// The listed fields are those of the pod.
	resp, err := e.rt.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{Id: back}})
	if err != nil || len(resp.GetItems()) != 1 {
		t.Fatalf("list back: %v, %v", resp, err)
	}
	p := resp.GetItems()[0]
	if p.GetMetadata().GetName() != "back" || p.GetLabels()["tier"] != "back" || p.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || p.GetCreatedAt() == 0 {
		t.Errorf("listed pod = %v", p)
	}
}
