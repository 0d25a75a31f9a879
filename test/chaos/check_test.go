package chaos

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/harness"
)

// answerWithin bounds every CRI call of the checks: a berthd that does
// not answer in that time is wedged, whatever it is busy with.
const answerWithin = 10 * time.Second

// state is one look at the runtime.
type state struct {
	sandboxes  map[string][]*runtimeapi.PodSandbox // by pod (manifest) name
	containers map[string][]*runtimeapi.Container  // by sandbox ID
}

func (r *run) call(what string, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), answerWithin)
	defer cancel()
	err := f(ctx)
	if status.Code(err) == codes.DeadlineExceeded {
		r.violate("berthd did not answer %s within %v", what, answerWithin)
	}
	return err
}

func (r *run) observe() (state, error) {
	st := state{sandboxes: map[string][]*runtimeapi.PodSandbox{}, containers: map[string][]*runtimeapi.Container{}}
	rt := r.d.Runtime
	var sbs *runtimeapi.ListPodSandboxResponse
	var cs *runtimeapi.ListContainersResponse
	err := r.call("ListPodSandbox", func(ctx context.Context) (err error) {
		sbs, err = rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		return err
	})
	if err == nil {
		err = r.call("ListContainers", func(ctx context.Context) (err error) {
			cs, err = rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
			return err
		})
	}
	if err != nil {
		return st, err
	}
	for _, sb := range sbs.GetItems() {
		name := strings.TrimSuffix(sb.GetLabels()["io.kubernetes.pod.name"], "-"+r.d.NodeName)
		st.sandboxes[name] = append(st.sandboxes[name], sb)
	}
	for _, c := range cs.GetContainers() {
		st.containers[c.GetPodSandboxId()] = append(st.containers[c.GetPodSandboxId()], c)
	}
	return st, nil
}

// converged says what is not yet as the manifests want, or "".
func (r *run) converged(st state) string {
	for _, name := range slices.Sorted(mapKeys(r.pods)) {
		p := r.pods[name]
		var ready []*runtimeapi.PodSandbox
		for _, sb := range st.sandboxes[name] {
			if v := sb.GetAnnotations()["chaos/version"]; v != strconv.Itoa(p.version) {
				return fmt.Sprintf("%s: a sandbox of version %s is left, want only version %d", name, v, p.version)
			}
			if sb.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
				ready = append(ready, sb)
			}
		}
		if p.kind == kindExiter {
			ran := false
			for _, sb := range st.sandboxes[name] {
				for _, c := range st.containers[sb.GetId()] {
					s := c.GetState()
					ran = ran || c.GetMetadata().GetName() == p.container() &&
						(s == runtimeapi.ContainerState_CONTAINER_RUNNING || s == runtimeapi.ContainerState_CONTAINER_EXITED)
				}
			}
			if !ran {
				return fmt.Sprintf("%s (version %d): its container has not run", name, p.version)
			}
			continue
		}
		if len(ready) != 1 {
			return fmt.Sprintf("%s (version %d): %d ready sandboxes", name, p.version, len(ready))
		}
		running := false
		for _, c := range st.containers[ready[0].GetId()] {
			running = running || c.GetMetadata().GetName() == p.container() && c.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING
		}
		if !running {
			return fmt.Sprintf("%s (version %d): %s is not running", name, p.version, p.container())
		}
	}
	for name, sbs := range st.sandboxes {
		if _, ok := r.pods[name]; !ok {
			return fmt.Sprintf("removed pod %s still has %d sandboxes", name, len(sbs))
		}
	}
	return ""
}

// checkSandboxes: never two live sandboxes of one pod.
func (r *run) checkSandboxes(st state) {
	for name, sbs := range st.sandboxes {
		r.checked++
		var ready []string
		for _, sb := range sbs {
			if sb.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
				ready = append(ready, sb.GetId()[:12])
			}
		}
		if len(ready) > 1 {
			r.violate("pod %s has %d live sandboxes: %v", name, len(ready), ready)
		}
	}
}

// check runs the invariants on a converged state.
func (r *run) check(st state) {
	r.checkSandboxes(st)
	for name, sbs := range st.sandboxes {
		for _, sb := range sbs {
			r.checkContainers(name, sb, st.containers[sb.GetId()])
		}
	}
}

// checkContainers: one container per name and attempt, at most one of a
// name running, every exit one the container made, every log line once
// and in order.
func (r *run) checkContainers(pod string, sb *runtimeapi.PodSandbox, cs []*runtimeapi.Container) {
	r.checked++
	seen := map[string]string{}
	running := map[string]int{}
	for _, c := range cs {
		key := fmt.Sprintf("%s attempt %d", c.GetMetadata().GetName(), c.GetMetadata().GetAttempt())
		if other, ok := seen[key]; ok {
			r.violate("pod %s, sandbox %.12s: two containers %s: %.12s and %.12s", pod, sb.GetId(), key, other, c.GetId())
		}
		seen[key] = c.GetId()
		if c.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
			running[c.GetMetadata().GetName()]++
		}
	}
	for name, n := range running {
		if n > 1 {
			r.violate("pod %s, sandbox %.12s: %d containers %s running", pod, sb.GetId(), n, name)
		}
	}
	exempt := r.exempt[sb.GetId()]
	for _, c := range cs {
		var s *runtimeapi.ContainerStatus
		if err := r.call("ContainerStatus", func(ctx context.Context) error {
			resp, err := r.d.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.GetId()})
			s = resp.GetStatus()
			return err
		}); err != nil {
			r.violate("pod %s: status of listed container %.12s: %v", pod, c.GetId(), err)
			continue
		}
		name := s.GetMetadata().GetName()
		what := fmt.Sprintf("pod %s, container %s (attempt %d, %.12s)", pod, name, s.GetMetadata().GetAttempt(), s.GetId())
		if s.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			r.checked++
			r.exits++
			code, isExiter := strings.CutPrefix(name, "code-")
			created := time.Unix(0, s.GetCreatedAt())
			switch {
			case exempt:
			case s.GetReason() == "StartError" && slices.ContainsFunc(r.runcDied, func(w window) bool { return w.overlaps(created, created) }):
				// runc died under it: it never ran, as berth says.
			case isExiter && code != strconv.Itoa(int(s.GetExitCode())):
				r.violate("%s exited with %d (%s: %s), want %s", what, s.GetExitCode(), s.GetReason(), s.GetMessage(), code)
			case !isExiter:
				r.violate("%s exited with %d (%s: %s) although nothing stopped it", what, s.GetExitCode(), s.GetReason(), s.GetMessage())
			}
		}
		if name == "log" && s.GetState() != runtimeapi.ContainerState_CONTAINER_CREATED {
			r.checkLog(what, s, exempt)
		}
	}
}

// checkLog reads a logger's CRI log: every line well-formed, its numbers
// 1, 2, 3… each once and in order. A gap is allowed only where the log
// filesystem was full.
func (r *run) checkLog(what string, s *runtimeapi.ContainerStatus, exempt bool) {
	r.checked++
	created := time.Unix(0, s.GetCreatedAt())
	data, err := os.ReadFile(s.GetLogPath())
	if errors.Is(err, fs.ErrNotExist) && (exempt || r.fullSince(created)) {
		return
	}
	if err != nil {
		r.violate("%s: its log: %v", what, err)
		return
	}
	lines := strings.Split(string(data), "\n")
	lines = lines[:len(lines)-1] // the last one is still being written
	prev, prevAt, partial := 0, created, ""
	for i, line := range lines {
		f := strings.SplitN(line, " ", 4)
		if len(f) != 4 || f[1] != "stdout" || (f[2] != "F" && f[2] != "P") {
			r.violate("%s: log line %d is not a CRI log line: %.100q", what, i+1, line)
			return
		}
		at, err := time.Parse(time.RFC3339Nano, f[0])
		if err != nil {
			r.violate("%s: log line %d has a bad time: %.100q", what, i+1, line)
			return
		}
		if f[2] == "P" {
			partial += f[3]
			continue
		}
		content := partial + f[3]
		partial = ""
		n, err := strconv.Atoi(strings.TrimPrefix(content, "seq "))
		if err != nil || !strings.HasPrefix(content, "seq ") {
			r.violate("%s: log line %d is corrupted: %.100q", what, i+1, content)
			return
		}
		switch {
		case n <= prev:
			r.violate("%s: log line %d says %d after %d: doubled or out of order", what, i+1, n, prev)
			return
		case n > prev+1 && !r.fullBetween(prevAt, at):
			r.violate("%s: log lines %d to %d are missing (between %s and %s), with the log filesystem never full then",
				what, prev+1, n-1, prevAt.Format(time.StampMilli), at.Format(time.StampMilli))
			return
		}
		prev, prevAt = n, at
		r.logLines++
	}
}

func (r *run) fullBetween(a, b time.Time) bool {
	return slices.ContainsFunc(r.full, func(w window) bool { return w.overlaps(a, b) })
}

func (r *run) fullSince(t time.Time) bool { return r.fullBetween(t, time.Now()) }

// teardown removes every pod and checks that berth released everything
// they held.
func (r *run) teardown() {
	for name := range r.pods {
		os.Remove(filepath.Join(r.d.Manifests, name+".yaml"))
	}
	r.pods = map[string]*pod{}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := r.observe()
		if err == nil && len(st.sandboxes) == 0 && len(st.containers) == 0 {
			break
		}
		if time.Now().After(deadline) {
			r.violate("pods left 2 minutes after their manifests went: %v", r.converged(st))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	var leaks []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if leaks = r.leaks(); len(leaks) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, l := range leaks {
		r.violate("leaked after every pod went: %s", l)
	}
}

// leaks lists what pods still hold once none is left: mounts, network
// namespaces, veths, IP leases, pod cgroups, shims and their sockets, runc
// state, iptables rules.
func (r *run) leaks() []string {
	d := r.d
	var out []string
	add := func(kind string, items []string) {
		r.checked++
		if len(items) > 0 {
			out = append(out, fmt.Sprintf("%s: %s", kind, strings.Join(items, ", ")))
		}
	}
	add("mounts", slices.DeleteFunc(harness.MountsBelow(d.Dir), func(m string) bool { return m == d.LogDir }))
	add("network namespaces", names(filepath.Join(d.State, "netns")))
	add("runc state", names(filepath.Join(d.State, "runc")))
	add("shim sockets", names(filepath.Join(d.State, "shims")))
	add("pod directories", slices.DeleteFunc(names(filepath.Join(d.Root, "pods")), func(n string) bool { return n == "gates" }))
	add("pod log directories", names(d.LogDir))
	add("log links", names(filepath.Join(filepath.Dir(d.LogDir), "containers")))
	var procs []string
	for id, pid := range shims(d.State) {
		procs = append(procs, fmt.Sprintf("%d (sandbox %.12s)", pid, id))
	}
	add("shims", procs)
	add("IP leases", slices.DeleteFunc(names(d.IPAMDir()), func(n string) bool {
		return n == "lock" || strings.HasPrefix(n, "last_reserved_ip")
	}))
	var veths []string
	if br, err := netlink.LinkByName(d.Bridge); err == nil {
		links, _ := netlink.LinkList()
		for _, l := range links {
			if l.Attrs().MasterIndex == br.Attrs().Index {
				veths = append(veths, l.Attrs().Name)
			}
		}
	}
	add("veths", veths)
	var cgroups []string
	top := strings.SplitN(d.CgroupRoot, "/", 2)[0]
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + top)
	for _, root := range roots {
		filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() && strings.HasPrefix(e.Name(), "pod") {
				cgroups = append(cgroups, path)
				return filepath.SkipDir
			}
			return nil
		})
	}
	add("pod cgroups", cgroups)
	var rules []string
	if dump, err := exec.Command("iptables-save").Output(); err == nil {
		for _, l := range strings.Split(string(dump), "\n") {
			if strings.Contains(l, d.Network) {
				rules = append(rules, l)
			}
		}
	}
	add("iptables rules", rules)
	return out
}

func names(dir string) []string {
	entries, _ := os.ReadDir(dir)
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
