package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/testutil"
)

// pod is one static pod of the model: what its manifest says now.
type pod struct {
	name    string // the manifest's file name and the pod's name
	kind    string // logger, exiter or puller
	version int    // the chaos/version annotation: each edit bumps it
	policy  string // restartPolicy
	code    int    // an exiter's exit code
	image   string
}

const (
	kindLogger = "logger" // logs numbered lines fast, forever
	kindExiter = "exiter" // exits with a known code
	kindPuller = "puller" // runs an image pulled from the (stalling) registry
)

// container is the name of the pod's one container; an exiter's says its
// exit code, so that any instance can be checked against it.
func (p *pod) container() string {
	switch p.kind {
	case kindExiter:
		return fmt.Sprintf("code-%d", p.code)
	case kindPuller:
		return "app"
	}
	return "log"
}

func (p *pod) manifest() string {
	image, cmd := busybox, `["sleep", "3600"]`
	switch p.kind {
	case kindLogger:
		cmd = `["sh", "-c", "i=0; while :; do i=$((i+1)); echo \"seq $i\"; if [ $((i % 20)) -eq 0 ]; then sleep 0.1; fi; done"]`
	case kindExiter:
		cmd = fmt.Sprintf(`["sh", "-c", "sleep 0.2; exit %d"]`, p.code)
	case kindPuller:
		image = p.image
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  annotations: {chaos/version: "%d"}
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: %s
  containers:
  - name: %s
    image: %s
    command: %s
`, p.name, p.version, p.policy, p.container(), image, cmd)
}

// run is one chaos run: a berthd, its pods, the faults and the figures.
type run struct {
	t       *testing.T
	rng     *rand.Rand
	d       *harness.Daemon
	chaos   string // the wrappers' directory and fault files
	reg     *harness.Registry
	proxy   *harness.CountingProxy
	pods    map[string]*pod
	nextPod int
	pushed  int // puller images pushed

	// exempt are the sandboxes whose shim was killed: their containers
	// died of it, with whatever code that gave.
	exempt map[string]bool
	// full are the windows in which the log filesystem was full: log lines
	// written then may be missing (berth counts them as dropped).
	full []window
	// runcDied are the windows in which a runc was made to die: a
	// container made then may have failed to start (StartError, 128).
	runcDied []window

	seed       int64
	ran        int // rounds run
	faults     map[string]int
	fired      map[string]int // the faults that struck something
	checked    int            // invariants checked
	logLines   int            // log lines found once and in order
	exits      int            // exit codes checked
	violations []string
	recovery   []time.Duration // from berthd's restart to every pod as wanted
	converge   []time.Duration // from a round's last fault to every pod as wanted
}

func TestChaos(t *testing.T) {
	s := *seed
	if s == 0 {
		s = time.Now().UnixNano()
	}
	fmt.Printf("chaos: seed %d (replay: go test ./test/chaos -chaos.seed %d -chaos.rounds %d)\n", s, s, *rounds)
	t.Logf("seed %d", s)
	r := &run{t: t, seed: s, rng: rand.New(rand.NewPCG(uint64(s), 0)), pods: map[string]*pod{}, exempt: map[string]bool{}, faults: map[string]int{}, fired: map[string]int{}}
	r.setup()
	for i := 1; i <= *rounds; i++ {
		r.ran = i
		if !r.round(i) {
			break
		}
	}
	r.teardown()
	r.report()
}

func (r *run) setup() {
	t := r.t
	d, err := harness.NewDaemon()
	if err != nil {
		t.Fatal(err)
	}
	r.d = d
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(d.LogPath()); err == nil {
				t.Logf("berthd log:\n%s", testutil.Tail(string(log), 80))
				keep := filepath.Join(os.TempDir(), fmt.Sprintf("berth-chaos-%d.log", r.seed))
				if os.WriteFile(keep, log, 0o644) == nil {
					t.Logf("berthd's whole log: %s", keep)
				}
			}
		}
		if err := d.Cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	r.chaos = filepath.Join(d.Dir, "chaos")
	runc, cniDirs, err := wrappers(r.chaos, d.Bin)
	if err != nil {
		t.Fatal(err)
	}
	// The pods' logs on a filesystem of their own that a fault can fill.
	if err := os.MkdirAll(d.LogDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m", "chaos-logs", d.LogDir).CombinedOutput(); err != nil {
		t.Fatalf("mount the log filesystem: %v\n%s", err, out)
	}

	reg, err := harness.StartRegistry(context.Background(), harness.RegistryOptions{})
	t.Cleanup(func() {
		if reg != nil {
			reg.Cleanup()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	r.reg = reg
	if r.proxy, err = reg.StartCountingProxy(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.proxy.Release(); r.proxy.Close() })
	if err := d.SetRegistryConfig(fmt.Sprintf("registries:\n  %q: {insecure: true}\n", r.proxy.Host)); err != nil {
		t.Fatal(err)
	}
	d.AddArgs("--runc", runc, "--cni-bin-dir", cniDirs,
		// Logs are read whole by the checks: no rotation in a run.
		"--container-log-max-size", "200Mi")
	d.SetLogLevel("info")
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(d.Bin, "berthctl"), "--cri-socket", d.Socket, "--api-socket", d.APISocket,
		"images", "import", imageArchive).CombinedOutput(); err != nil {
		t.Fatalf("import the image: %v\n%s", err, out)
	}
	if err := os.MkdirAll(d.Manifests, 0o755); err != nil {
		t.Fatal(err)
	}
}

// round changes the pods, injects one fault, waits until berthd has made
// every pod what its manifest says and checks the invariants. It says
// whether the run can go on.
func (r *run) round(n int) bool {
	f := faults[r.rng.IntN(len(faults))]
	r.faults[f]++
	r.t.Logf("round %d: %s", n, f)
	var heal func()
	switch f {
	case faultRuncBefore, faultRuncAfter:
		mode := map[string]string{faultRuncBefore: "before", faultRuncAfter: "after"}[f]
		path := filepath.Join(r.chaos, "runc-fault")
		r.write(path, mode)
		from := time.Now()
		heal = func() {
			if err := os.Remove(path); os.IsNotExist(err) {
				r.fired[f]++ // the wrapper took it
			}
			r.runcDied = append(r.runcDied, window{from, time.Now()})
		}
	case faultCNIFail, faultCNIHang:
		mode := map[string]string{faultCNIFail: "fail", faultCNIHang: "hang"}[f]
		path := filepath.Join(r.chaos, "cni-fault")
		r.write(path, mode)
		heal = func() {
			os.Remove(path)
			if err := os.Remove(path + ".fired"); err == nil {
				r.fired[f]++
			}
		}
	case faultLogsFull:
		from := time.Now()
		path, err := fill(r.d.LogDir)
		if err != nil {
			r.t.Fatalf("fill the log filesystem: %v", err)
		}
		heal = func() {
			os.Remove(path)
			r.full = append(r.full, window{from, time.Now()})
			r.fired[f]++
		}
	case faultRegistryStall:
		r.proxy.Stall()
		before := r.blobGets()
		heal = func() {
			if r.blobGets() > before {
				r.fired[f]++
			}
			r.proxy.Release()
		}
	}
	// The first change starts a pod version (a sandbox, a container, a
	// pull where the registry stalls), which the fault may hit.
	first := ""
	switch f {
	case faultRegistryStall:
		first = kindPuller
	case faultRuncBefore, faultRuncAfter, faultCNIFail, faultCNIHang:
		first = []string{kindLogger, kindExiter}[r.rng.IntN(2)]
	}
	r.mutate(first)
	for range r.rng.IntN(3) {
		r.mutate("")
	}
	var restarted time.Time
	// The fault strikes at a random moment of what the changes started.
	time.Sleep(time.Duration(r.rng.IntN(1500)) * time.Millisecond)
	switch f {
	case faultKillBerthd:
		r.d.Kill()
		r.fired[f]++
		if r.rng.IntN(2) == 0 {
			r.mutate("") // changed while berthd is down
		}
		restarted = time.Now()
		if err := r.d.Start(context.Background()); err != nil {
			r.violate("berthd did not start again after kill -9: %v", err)
			return false
		}
	case faultKillShim:
		all := shims(r.d.State)
		ids := make([]string, 0, len(all))
		for id := range all {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		if len(ids) > 0 {
			id := ids[r.rng.IntN(len(ids))]
			r.exempt[id] = true
			if syscall.Kill(all[id], syscall.SIGKILL) == nil {
				r.fired[f]++
			}
		}
	}
	if heal != nil {
		time.Sleep(time.Duration(1000+r.rng.IntN(2000)) * time.Millisecond)
		heal()
	}
	// One look while berthd recovers: never two live sandboxes of a pod.
	if st, err := r.observe(); err == nil {
		r.checkSandboxes(st)
	}
	start := time.Now()
	deadline := start.Add(2 * time.Minute)
	var why string
	for {
		st, err := r.observe()
		if err == nil {
			if why = r.converged(st); why == "" {
				r.converge = append(r.converge, time.Since(start))
				if !restarted.IsZero() {
					r.recovery = append(r.recovery, time.Since(restarted))
				}
				r.check(st)
				return len(r.violations) == 0
			}
		} else {
			why = err.Error()
		}
		if time.Now().After(deadline) {
			r.violate("round %d (%s): pods not as their manifests say after 2 minutes: %s", n, f, why)
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mutate adds, edits (atomically or in place) or removes a pod; with a
// kind, it adds or edits one, of that kind.
func (r *run) mutate(kind string) {
	names := slices.Sorted(mapKeys(r.pods))
	op := r.rng.IntN(10)
	if kind != "" {
		op = r.rng.IntN(8)
	}
	switch {
	case len(names) < 3 || op < 3 && len(names) < 7:
		r.nextPod++
		p := &pod{name: fmt.Sprintf("p%d", r.nextPod), version: 1}
		r.pods[p.name] = p
		r.shape(p, kind)
		r.apply(p, true)
	case op < 8:
		p := r.pods[names[r.rng.IntN(len(names))]]
		p.version++
		r.shape(p, kind)
		r.apply(p, r.rng.IntN(2) == 0)
	default:
		name := names[r.rng.IntN(len(names))]
		delete(r.pods, name)
		if err := os.Remove(filepath.Join(r.d.Manifests, name+".yaml")); err != nil {
			r.t.Fatal(err)
		}
	}
}

// shape picks a pod's kind (unless given), restart policy and exit code
// afresh.
func (r *run) shape(p *pod, kind string) {
	p.kind = []string{kindLogger, kindLogger, kindExiter, kindExiter, kindPuller}[r.rng.IntN(5)]
	if kind != "" {
		p.kind = kind
	}
	p.policy = []string{"Always", "OnFailure", "Never"}[r.rng.IntN(3)]
	p.code = r.rng.IntN(4)
	if p.kind == kindLogger || p.kind == kindPuller {
		p.policy = "Always"
	}
	if p.kind == kindPuller {
		r.pushed++
		marked, err := harness.WithFile(busyboxImage, "/mark", 0o644, fmt.Appendf(nil, "%d", r.pushed))
		if err != nil {
			r.t.Fatal(err)
		}
		tag := fmt.Sprintf("chaos/p:v%d", r.pushed)
		if _, err := r.reg.Push(context.Background(), tag, marked); err != nil {
			r.t.Fatal(err)
		}
		p.image = r.proxy.Host + "/" + tag
	}
}

// apply writes the pod's manifest: atomically (a rename), or in place,
// which berthd may read half-written.
func (r *run) apply(p *pod, atomic bool) {
	path := filepath.Join(r.d.Manifests, p.name+".yaml")
	if !atomic {
		r.write(path, p.manifest())
		return
	}
	tmp := filepath.Join(r.d.Manifests, "."+p.name+".tmp")
	r.write(tmp, p.manifest())
	if err := os.Rename(tmp, path); err != nil {
		r.t.Fatal(err)
	}
}

func (r *run) write(path, content string) {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *run) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.violations = append(r.violations, msg)
	r.t.Error(msg)
}

// report prints the run's figures.
func (r *run) report() {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: %d rounds, %d invariants checked (%d exit codes, %d log lines read), %d violations\n",
		r.ran, r.checked, r.exits, r.logLines, len(r.violations))
	fmt.Fprintf(&b, "  %-28s %s\n", "fault", "rounds (struck)")
	for _, f := range slices.Sorted(mapKeys(r.faults)) {
		fmt.Fprintf(&b, "  %-28s %d (%d)\n", f, r.faults[f], r.fired[f])
	}
	fmt.Fprintf(&b, "  recovery after kill -9 of berthd: %s\n", percentiles(r.recovery))
	fmt.Fprintf(&b, "  convergence after a round's faults: %s\n", percentiles(r.converge))
	fmt.Print(b.String())
	r.t.Log(b.String())
}

func (r *run) blobGets() int {
	n := 0
	for _, c := range r.proxy.BlobGets() {
		n += c
	}
	return n
}

func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none measured"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))].Round(time.Millisecond) }
	return fmt.Sprintf("p50 %v, p99 %v, max %v (%d)", at(0.5), at(0.99), s[len(s)-1].Round(time.Millisecond), len(s))
}
