// Package kube runs a real Kubernetes control plane (etcd, kube-apiserver,
// kube-controller-manager) on loopback for integration tests, secured as a
// kubeadm cluster is: client certificates, bootstrap tokens, Node+RBAC
// authorization and the NodeRestriction admission plugin. The binaries come
// from the separate module in test/kube/tools (see build.sh), so berth itself
// never imports k8s.io/kubernetes.
package kube

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Binaries are the programs Start needs in $BERTH_KUBE_BIN (or build.sh's
// output directory).
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl"}

const (
	// ServiceCIDR is the cluster's service IP range; its first address is
	// the kubernetes Service, which the serving certificate covers.
	ServiceCIDR = "10.96.0.0/16"
	// PodCIDR is split into a /24 per Node (spec.podCIDR) by the
	// controller-manager, as with kubeadm's --pod-network-cidr.
	PodCIDR = "10.244.0.0/16"
	// ServiceAccountIssuer is the iss claim of service account tokens.
	ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
)

// T is what the control plane needs of its caller: a *testing.T, or the
// benchmark's stand-in for one.
type T interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Failed() bool
}

// Cluster is a running control plane. Its files live in Dir, which goes away
// with the test.
type Cluster struct {
	URL             string // https://127.0.0.1:port of the apiserver
	Dir             string
	CACert          []byte // PEM; the CA that signs every certificate here
	CAFile          string
	CAKeyFile       string
	AdminKubeconfig string // CN=kubernetes-admin, O=system:masters; certs embedded
	// The apiserver presents this certificate to kubelets (group
	// system:masters). It does not verify kubelet serving certificates
	// (no --kubelet-certificate-authority), as kubeadm leaves it.
	KubeletClientCertFile string
	KubeletClientKeyFile  string

	bin           string
	ca            *authority
	admin         *rest.Config
	procs         []*process
	apiserverArgs []string
}

// StopAPIServer kills the kube-apiserver, as an outage of the control
// plane looks to a node: etcd and the controllers stay.
func (c *Cluster) StopAPIServer(t T) {
	t.Helper()
	for i, p := range c.procs {
		if p.name == "kube-apiserver" {
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
			c.procs = append(c.procs[:i], c.procs[i+1:]...)
			return
		}
	}
	t.Fatal("no kube-apiserver runs")
}

// StartAPIServer starts the kube-apiserver (again, after StopAPIServer) on
// the same port and returns once it is ready.
func (c *Cluster) StartAPIServer(t T) {
	t.Helper()
	c.start(t, "kube-apiserver", c.apiserverArgs...)
	client := c.Client(t)
	c.waitFor(t, "kube-apiserver /readyz", 2*time.Minute, func(ctx context.Context) (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", err
	})
}

type process struct {
	name, log string
	cmd       *exec.Cmd
	done      chan struct{}
	err       error // cmd.Wait's result, once done is closed
}

// Start runs etcd, kube-apiserver and kube-controller-manager for t and
// returns once the apiserver is ready and the controllers have created the
// default ServiceAccount. Everything is stopped and removed when t ends; if t
// failed, the end of each component's log is logged first.
func Start(t T) *Cluster {
	t.Helper()
	began := time.Now()
	c := &Cluster{bin: binaries(t), Dir: t.TempDir()}
	// Registered after TempDir, so it runs before the directory is removed,
	// and before any process starts, so a Start that fails halfway cleans up.
	t.Cleanup(func() { c.stop(t) })

	var err error
	if c.ca, err = newAuthority("berth-test-ca"); err != nil {
		t.Fatal(err)
	}
	c.CACert = c.ca.certPEM
	c.CAFile, c.CAKeyFile = c.path("ca.crt"), c.path("ca.key")
	c.writeFile(t, "ca.crt", c.ca.certPEM, 0o644)
	c.writeFile(t, "ca.key", c.ca.keyPEM, 0o600)
	_, svcNet, _ := net.ParseCIDR(ServiceCIDR)
	svcIP := append(net.IP(nil), svcNet.IP.To4()...)
	svcIP[3]++
	c.writeCert(t, "apiserver", func() ([]byte, []byte, error) { return c.ca.servingCert(svcIP) })
	c.writeCert(t, "apiserver-kubelet-client", func() ([]byte, []byte, error) {
		return c.ca.clientCert("kube-apiserver-kubelet-client", "system:masters")
	})
	c.KubeletClientCertFile, c.KubeletClientKeyFile = c.path("apiserver-kubelet-client.crt"), c.path("apiserver-kubelet-client.key")
	if err := writeServiceAccountKeys(c.path("sa.key"), c.path("sa.pub")); err != nil {
		t.Fatal(err)
	}

	ports := freePorts(t, 3)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	c.URL = "https://127.0.0.1:" + strconv.Itoa(ports[2])

	adminCert, adminKey, err := c.ca.clientCert("kubernetes-admin", "system:masters")
	if err != nil {
		t.Fatal(err)
	}
	c.AdminKubeconfig = c.kubeconfig(t, "admin", clientcmdapi.AuthInfo{ClientCertificateData: adminCert, ClientKeyData: adminKey})
	c.admin = &rest.Config{
		Host:            c.URL,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CACert, CertData: adminCert, KeyData: adminKey},
		QPS:             100,
		Burst:           200,
		Timeout:         30 * time.Second,
	}
	cmCert, cmKey, err := c.ca.clientCert("system:kube-controller-manager")
	if err != nil {
		t.Fatal(err)
	}
	cmKubeconfig := c.kubeconfig(t, "controller-manager", clientcmdapi.AuthInfo{ClientCertificateData: cmCert, ClientKeyData: cmKey})

	c.start(t, "etcd",
		"--name=berth-test",
		"--data-dir="+c.path("etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=berth-test="+peerURL,
		"--initial-cluster-state=new",
		"--unsafe-no-fsync", // throwaway data; fsync only slows the tests down
		"--log-level=warn",
	)
	hc := &http.Client{Timeout: 5 * time.Second}
	c.waitFor(t, "etcd /health", time.Minute, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, etcdURL+"/health", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK, fmt.Errorf("%s: %s", resp.Status, body)
	})

	c.apiserverArgs = []string{
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// Endpoints may not hold loopback addresses, so the kubernetes
		// Service gets none rather than the apiserver refusing to start.
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(ports[2]),
		"--etcd-servers=" + etcdURL,
		"--tls-cert-file=" + c.path("apiserver.crt"),
		"--tls-private-key-file=" + c.path("apiserver.key"),
		"--client-ca-file=" + c.CAFile,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--enable-bootstrap-token-auth",
		"--allow-privileged=true", // as kubeadm sets it; berth runs privileged pods
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--service-account-issuer=" + ServiceAccountIssuer,
		"--service-account-key-file=" + c.path("sa.pub"),
		"--service-account-signing-key-file=" + c.path("sa.key"),
		"--kubelet-client-certificate=" + c.KubeletClientCertFile,
		"--kubelet-client-key=" + c.KubeletClientKeyFile,
		// kubeadm's order: the node's host name may resolve to loopback,
		// which the node proxy refuses to reach.
		"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
		"--cert-dir=" + c.path("apiserver-certs"), // never the default /var/run/kubernetes
	}
	c.StartAPIServer(t)

	c.start(t, "kube-controller-manager",
		"--kubeconfig="+cmKubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=0", // nothing here probes its /healthz; saves a port
		"--leader-elect=false",
		"--controllers=*,bootstrapsigner,tokencleaner", // kubeadm's set
		"--use-service-account-credentials",
		"--service-account-private-key-file="+c.path("sa.key"),
		"--root-ca-file="+c.CAFile,
		"--cluster-signing-cert-file="+c.CAFile,
		"--cluster-signing-key-file="+c.CAKeyFile,
		"--service-cluster-ip-range="+ServiceCIDR,
		"--allocate-node-cidrs=true",
		"--cluster-cidr="+PodCIDR,
	)
	client := c.Client(t)
	c.waitFor(t, "ServiceAccount default/default", 2*time.Minute, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
	t.Logf("kube control plane at %s ready after %v (files in %s)", c.URL, time.Since(began).Round(time.Millisecond), c.Dir)
	return c
}

// Client is a client-go clientset acting as the cluster admin.
func (c *Cluster) Client(t T) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(rest.CopyConfig(c.admin))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// ClientFor is a clientset acting as whoever kubeconfig names.
func (c *Cluster) ClientFor(t T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 30 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// Kubectl runs kubectl as the cluster admin and returns its stdout; the error
// carries its stderr.
func (c *Cluster) Kubectl(t T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := c.KubectlCommand(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return string(out), nil
}

// KubectlCommand is kubectl with args as the cluster admin, for what
// Kubectl cannot do: feed stdin, or run on while the test goes on. It is
// killed when ctx ends.
func (c *Cluster) KubectlCommand(ctx context.Context, args ...string) *exec.Cmd {
	// Own discovery cache: another cluster may have had this port before.
	full := append([]string{"--kubeconfig=" + c.AdminKubeconfig, "--cache-dir=" + c.path("kubectl-cache")}, args...)
	return exec.CommandContext(ctx, filepath.Join(c.bin, "kubectl"), full...)
}

func (c *Cluster) path(name string) string { return filepath.Join(c.Dir, name) }

func (c *Cluster) writeFile(t T, name string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(c.path(name), data, mode); err != nil {
		t.Fatal(err)
	}
}

// writeCert writes name.crt and name.key from issue.
func (c *Cluster) writeCert(t T, name string, issue func() ([]byte, []byte, error)) {
	t.Helper()
	cert, key, err := issue()
	if err != nil {
		t.Fatal(err)
	}
	c.writeFile(t, name+".crt", cert, 0o644)
	c.writeFile(t, name+".key", key, 0o600)
}

// kubeconfig writes Dir/name.kubeconfig for user against this cluster, all
// certificates embedded, and returns its path.
func (c *Cluster) kubeconfig(t T, name string, user clientcmdapi.AuthInfo) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["berth-test"] = &clientcmdapi.Cluster{Server: c.URL, CertificateAuthorityData: c.CACert}
	cfg.AuthInfos[name] = &user
	cfg.Contexts["berth-test"] = &clientcmdapi.Context{Cluster: "berth-test", AuthInfo: name}
	cfg.CurrentContext = "berth-test"
	p := c.path(name + ".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs Dir's binary name with its output in Dir/name.log, in a process
// group of its own so that stop kills whatever it forks too.
func (c *Cluster) start(t T, name string, args ...string) {
	t.Helper()
	log, err := os.OpenFile(c.path(name+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Pdeathsig: a test binary killed outright must not leave a control plane.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, log: log.Name(), cmd: cmd, done: make(chan struct{})}
	c.procs = append(c.procs, p)
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
}

func (c *Cluster) stop(t T) {
	for _, p := range c.procs {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	for _, p := range c.procs {
		<-p.done
	}
	if t.Failed() {
		for _, p := range c.procs {
			t.Logf("--- last lines of %s (%v):\n%s", p.log, p.err, tail(p.log, 50))
		}
	}
}

// waitFor polls cond until it holds, failing t at the deadline or as soon as
// a component exits. cond's error (if any) explains the last miss.
func (c *Cluster) waitFor(t T, what string, timeout time.Duration, cond func(context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		for _, p := range c.procs {
			select {
			case <-p.done:
				t.Fatalf("%s exited (%v) while waiting for %s; see %s", p.name, p.err, what, p.log)
			default:
			}
		}
		ok, err := cond(ctx)
		if ok {
			return
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("no %s after %v: %v", what, timeout, last)
		case <-tick.C:
		}
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// All are held open together so that none is handed out twice.
func freePorts(t T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// binaries returns the directory holding Binaries: $BERTH_KUBE_BIN, else what
// build.sh builds (or finds in its cache). Missing binaries fail the test: a
// suite that skipped here would pass without testing anything.
func binaries(t T) string {
	t.Helper()
	dir := os.Getenv("BERTH_KUBE_BIN")
	if dir == "" {
		var err error
		if dir, err = buildOnce(); err != nil {
			t.Fatalf("building the kube test binaries (set BERTH_KUBE_BIN to a directory holding %s to use prebuilt ones): %v",
				strings.Join(Binaries, ", "), err)
		}
	}
	var missing []string
	for _, b := range Binaries {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("kube test binaries missing from %s: %s (run `make kube-tools` or test/kube/build.sh and set BERTH_KUBE_BIN to the directory it prints)",
			dir, strings.Join(missing, ", "))
	}
	return dir
}

// buildOnce runs build.sh once per test binary; a cold build takes minutes,
// a warm one is a hash and four stats.
var buildOnce = sync.OnceValues(func() (string, error) {
	script, err := buildScript()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "kube: running %s (set BERTH_KUBE_BIN to skip)\n", script)
	var stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stderr = io.MultiWriter(os.Stderr, &stderr)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", script, err, bytes.TrimSpace(stderr.Bytes()))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
})

// buildScript finds build.sh next to this file, or through the main module's
// go.mod when the test binary was built with -trimpath.
func buildScript() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		return filepath.Join(filepath.Dir(file), "build.sh"), nil
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", errors.Join(errors.New("cannot find the berth repository: no source path and no go.mod"), err)
	}
	return filepath.Join(filepath.Dir(gomod), "test", "kube", "build.sh"), nil
}
