// Package kube is the "kubernetes" upstream plugin: berth joins a real
// cluster as a Node. It registers the Node (capacity from cAdvisor, the
// runtime's readiness from the CRI), keeps a Lease in kube-node-lease
// renewed, watches the pods bound to the node and hands them to berth's
// pod workers, and reports their status back through the status
// subresource. A pod deleted through the API is terminated with its
// grace period and then deleted with grace 0, as kubelet does.
//
// API traffic follows kubelet's cadence: a lease renewal every 10 s, the
// Node's status written when it changes and at least every 5 minutes, one
// watch of pods with a field selector, and a status patch only when a
// pod's status changed.
package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"

	"github.com/berth-project/berth/pkg/eviction"
	"github.com/berth-project/berth/pkg/upstream"
)

// runtimeInfo is the slice of the CRI the plugin reads: the runtime's
// name and version for the Node, its readiness for the Ready condition.
type runtimeInfo interface {
	Version(ctx context.Context, in *runtimeapi.VersionRequest, opts ...grpc.CallOption) (*runtimeapi.VersionResponse, error)
	Status(ctx context.Context, in *runtimeapi.StatusRequest, opts ...grpc.CallOption) (*runtimeapi.StatusResponse, error)
}

// imageLister is the slice of the CRI's image service the Node's image
// list reads.
type imageLister interface {
	ListImages(ctx context.Context, in *runtimeapi.ListImagesRequest, opts ...grpc.CallOption) (*runtimeapi.ListImagesResponse, error)
}

// Config is what the plugin needs.
type Config struct {
	// Kubeconfig is a kubeconfig file with this node's credentials; the
	// server must be https. With BootstrapKubeconfig, berth writes it.
	Kubeconfig string
	// BootstrapKubeconfig, if set, has credentials (a bootstrap token)
	// that may only ask for a node certificate: berth does so when it has
	// no valid certificate in CertDir, and rotates the certificate before
	// it expires (kubelet's TLS bootstrap).
	BootstrapKubeconfig string
	CertDir             string
	NodeName            string
	// NodeIP is the node's InternalIP; "" means the first global unicast
	// address of the host.
	NodeIP     string
	NodeLabels map[string]string
	Taints     []v1.Taint
	Runtime    runtimeInfo
	// Images lists the node's images for the Node's status; nil: none.
	Images imageLister
	// Root is berth's --root: its filesystem is the ephemeral storage.
	Root    string
	MaxPods int
	// HardEviction are the hard eviction thresholds, held back from the
	// Node's allocatable memory and ephemeral storage.
	HardEviction []eviction.Threshold
	// Pressure reports the node's memory and disk pressure (the eviction
	// manager's); nil: none.
	Pressure func() (memory, disk bool)
	// Version is reported as the Node's kubeletVersion.
	Version string
	// KubeletPort is where berth serves its kubelet API, reported as the
	// Node's kubelet endpoint; 0 means kubelet's 10250.
	KubeletPort int32
	Clock       clock.WithTicker
	Log         *slog.Logger
}

// Plugin is a Node of a Kubernetes cluster.
type Plugin struct {
	cfg         Config
	client      *apiClient
	statuses    upstream.PodStatuses
	allocatable v1.ResourceList // set by Run before its loops start
	vols        volumeCache
	hostIP      string // the Node's InternalIP, set by Run

	bootstrap *rest.Config // the bootstrap credentials, when joining by CSR
	creds     *credentials
	// reviews is client for the kubelet API's reviews of its callers,
	// which read it from their own goroutines while joinByCSR may set it.
	reviews  atomic.Pointer[apiClient]
	caBundle []byte // the API server's CA, from the kubeconfig

	terminated chan types.UID
	mu         sync.Mutex
	doneUIDs   map[types.UID]bool // versions the agent reported gone
	apiUIDs    map[types.UID]bool // the API's pods on this node
	static     []*v1.Pod          // the static pods, for their mirror pods

	staticChanged chan struct{}
	recorder      record.EventRecorder
}

// Timings, kubelet's defaults.
const (
	leaseDuration        = 40 * time.Second
	leaseRenew           = 10 * time.Second
	nodeStatusUpdate     = 10 * time.Second
	nodeStatusReport     = 5 * time.Minute
	nodeLeaseNamespace   = "kube-node-lease"
	defaultMaxPods       = 110
	defaultKubeletPort   = 10250
	configSourceAPI      = "api"
	configSourceAnnotKey = "kubernetes.io/config.source"
)

// New reads the kubeconfig and returns the plugin; nothing is contacted
// before Run.
func New(cfg Config) (*Plugin, error) {
	if cfg.BootstrapKubeconfig != "" {
		rc, err := tlsConfigFrom(cfg.BootstrapKubeconfig, cfg.Version)
		if err != nil {
			return nil, err
		}
		p := newWithClient(cfg, nil)
		p.bootstrap, p.creds = rc, &credentials{dir: cfg.CertDir}
		if p.caBundle, err = caBundle(rc); err != nil {
			return nil, fmt.Errorf("bootstrap kubeconfig %s: %w", cfg.BootstrapKubeconfig, err)
		}
		if err := p.creds.load(); err != nil && !errors.Is(err, os.ErrNotExist) {
			cfg.Log.Warn("node certificate unreadable: bootstrapping a new one", "err", err)
		}
		return p, nil
	}
	rc, err := tlsConfigFrom(cfg.Kubeconfig, cfg.Version)
	if err != nil {
		return nil, err
	}
	client, err := newAPIClient(rc)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", cfg.Kubeconfig, err)
	}
	p := newWithClient(cfg, client)
	p.reviews.Store(client)
	if p.caBundle, err = caBundle(rc); err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", cfg.Kubeconfig, err)
	}
	return p, nil
}

// caBundle is the CA rc trusts for the API server; nil when it names none
// (the system's roots).
func caBundle(rc *rest.Config) ([]byte, error) {
	if len(rc.CAData) > 0 || rc.CAFile == "" {
		return rc.CAData, nil
	}
	return os.ReadFile(rc.CAFile)
}

// tlsConfigFrom reads a kubeconfig whose server must be verified https.
func tlsConfigFrom(path, version string) (*rest.Config, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	if !strings.HasPrefix(rc.Host, "https://") || rc.Insecure {
		return nil, fmt.Errorf("kubeconfig %s: server %q: berth talks to the API server over verified TLS only", path, rc.Host)
	}
	rc.UserAgent = "berth/" + version
	// kubelet's kubeAPIQPS and kubeAPIBurst: client-go's default of 5/s
	// queues a pod's status patch behind its start's events.
	rc.QPS, rc.Burst = 50, 100
	return rc, nil
}

func newWithClient(cfg Config, client *apiClient) *Plugin {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.MaxPods == 0 {
		cfg.MaxPods = defaultMaxPods
	}
	p := &Plugin{cfg: cfg, client: client, terminated: make(chan types.UID, 256), doneUIDs: map[types.UID]bool{},
		staticChanged: make(chan struct{}, 1),
		vols:          volumeCache{objects: map[string]cachedObject{}, tokens: map[string]cachedToken{}}}
	if cfg.Root != "" {
		p.vols.journal = filepath.Join(cfg.Root, "upstream", "kubernetes-objects.json")
		if err := p.vols.load(cfg.Clock.Now()); err != nil {
			cfg.Log.Warn("journal of configMaps and secrets unreadable: starting without it", "err", err)
		}
	}
	return p
}

// Name is "kubernetes".
func (p *Plugin) Name() string { return "kubernetes" }

// ReportStatuses is upstream.StatusReporter's.
func (p *Plugin) ReportStatuses(s upstream.PodStatuses) { p.statuses = s }

// PodTerminated is upstream.TerminationObserver's.
func (p *Plugin) PodTerminated(_, _ string, uid types.UID) {
	p.mu.Lock()
	p.doneUIDs[uid] = true
	p.mu.Unlock()
	select {
	case p.terminated <- uid:
	default: // the pod loop also looks at doneUIDs on every pass
	}
}

func (p *Plugin) isDone(uid types.UID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.doneUIDs[uid]
}

// errNoCredentials: the node has no credentials yet (its certificate is
// still asked for by CSR).
var errNoCredentials = errors.New("the node has no API credentials yet")

// ClusterCA is the CA bundle of the kubeconfig berth reaches the API
// server with (PEM; nil when it names none): kubelet's API trusts client
// certificates it signed unless told otherwise.
func (p *Plugin) ClusterCA() []byte { return p.caBundle }

// ReviewToken asks the API server whose token this is (a TokenReview of
// authentication.k8s.io/v1), for the kubelet API.
func (p *Plugin) ReviewToken(ctx context.Context, token string) (authenticationv1.TokenReviewStatus, error) {
	c := p.reviews.Load()
	if c == nil {
		return authenticationv1.TokenReviewStatus{}, errNoCredentials
	}
	r, err := c.createTokenReview(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}})
	if err != nil {
		return authenticationv1.TokenReviewStatus{}, fmt.Errorf("token review: %w", err)
	}
	return r.Status, nil
}

// ReviewAccess asks the API server whether spec's user may do what spec
// says (a SubjectAccessReview of authorization.k8s.io/v1), for the
// kubelet API.
func (p *Plugin) ReviewAccess(ctx context.Context, spec authorizationv1.SubjectAccessReviewSpec) (authorizationv1.SubjectAccessReviewStatus, error) {
	c := p.reviews.Load()
	if c == nil {
		return authorizationv1.SubjectAccessReviewStatus{}, errNoCredentials
	}
	r, err := c.createSubjectAccessReview(ctx, &authorizationv1.SubjectAccessReview{Spec: spec})
	if err != nil {
		return authorizationv1.SubjectAccessReviewStatus{}, fmt.Errorf("subject access review: %w", err)
	}
	return r.Status, nil
}

// Run registers the node, then keeps the lease, the node's status and the
// pods in sync until ctx ends.
func (p *Plugin) Run(ctx context.Context, sink upstream.Sink) error {
	facts, err := readMachine(p.cfg.Root)
	if err != nil {
		return err
	}
	if p.bootstrap != nil {
		if !p.joinByCSR(ctx, sink) {
			return nil
		}
	}
	_, p.allocatable = resources(facts, p.cfg.MaxPods, p.cfg.HardEviction)
	var node *v1.Node
	for retry := time.Second; ; retry = min(retry*2, 30*time.Second) {
		if node, err = p.register(ctx, facts); err == nil {
			break
		}
		sink.Connected(fmt.Errorf("register node %s: %w", p.cfg.NodeName, err))
		select {
		case <-ctx.Done():
			return nil
		case <-p.cfg.Clock.After(retry):
		}
	}
	sink.Connected(nil)
	for _, a := range node.Status.Addresses {
		if a.Type == v1.NodeInternalIP && p.hostIP == "" {
			p.hostIP = a.Address
		}
	}
	p.startEvents(ctx)
	p.cfg.Log.Info("node registered", "node", node.Name, "uid", node.UID)
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){
		func(ctx context.Context) { p.renewLease(ctx, node, sink) },
		func(ctx context.Context) { p.syncNodeStatus(ctx, facts, node.Status) },
		func(ctx context.Context) { p.syncPods(ctx, sink, node) },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// register creates the Node, or adopts the existing one (after a restart,
// or one an operator made): its labels and taints are kubelet's to keep.
func (p *Plugin) register(ctx context.Context, facts machineFacts) (*v1.Node, error) {
	st, err := p.nodeStatus(ctx, facts, nil)
	if err != nil {
		return nil, err
	}
	want := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: p.cfg.NodeName, Labels: nodeLabels(p.cfg.NodeName, p.cfg.NodeLabels)},
		Spec:       v1.NodeSpec{Taints: p.cfg.Taints},
		Status:     st,
	}
	created, err := p.client.createNode(ctx, want)
	if err == nil {
		return created, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	existing, err := p.client.getNode(ctx, p.cfg.NodeName, "")
	if err != nil {
		return nil, err
	}
	changed := false
	for k, v := range want.Labels {
		if existing.Labels[k] != v {
			if existing.Labels == nil {
				existing.Labels = map[string]string{}
			}
			existing.Labels[k], changed = v, true
		}
	}
	if changed {
		if existing, err = p.client.updateNode(ctx, existing); err != nil {
			return nil, err
		}
	}
	if existing.Status, err = p.nodeStatus(ctx, facts, existing.Status.Conditions); err != nil {
		return nil, err
	}
	return p.client.updateNodeStatus(ctx, existing)
}

// nodeStatus asks the runtime and computes the Node's status.
func (p *Plugin) nodeStatus(ctx context.Context, m machineFacts, before []v1.NodeCondition) (v1.NodeStatus, error) {
	port := p.cfg.KubeletPort
	if port == 0 {
		port = defaultKubeletPort
	}
	f := nodeFacts{machine: m, maxPods: p.cfg.MaxPods, hardEviction: p.cfg.HardEviction, kubeletVersion: p.cfg.Version, kubeletPort: port,
		now: metav1.NewTime(p.cfg.Clock.Now()), conditionsBefore: before}
	if p.cfg.Pressure != nil {
		f.memoryPressure, f.diskPressure = p.cfg.Pressure()
	}
	addrs, err := p.addresses()
	if err != nil {
		return v1.NodeStatus{}, err
	}
	f.addresses = addrs
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if p.cfg.Images != nil {
		if resp, err := p.cfg.Images.ListImages(cctx, &runtimeapi.ListImagesRequest{}); err == nil {
			f.images = resp.GetImages()
		}
	}
	if v, err := p.cfg.Runtime.Version(cctx, &runtimeapi.VersionRequest{}); err == nil {
		f.runtimeVersion = v.GetRuntimeName() + "://" + v.GetRuntimeVersion()
	}
	st, err := p.cfg.Runtime.Status(cctx, &runtimeapi.StatusRequest{})
	f.runtime, f.runtimeErr = st.GetStatus(), err
	return nodeStatus(f), nil
}

// addresses are the node's InternalIP and Hostname.
func (p *Plugin) addresses() ([]v1.NodeAddress, error) {
	ip := p.cfg.NodeIP
	if ip == "" {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.IsGlobalUnicast() && n.IP.To4() != nil {
				ip = n.IP.String()
				break
			}
		}
	}
	var out []v1.NodeAddress
	if ip != "" {
		out = append(out, v1.NodeAddress{Type: v1.NodeInternalIP, Address: ip})
	}
	host, err := os.Hostname()
	if err != nil {
		host = p.cfg.NodeName
	}
	return append(out, v1.NodeAddress{Type: v1.NodeHostName, Address: strings.ToLower(host)}), nil
}

// syncNodeStatus writes the Node's status when it changes, and at least
// every nodeStatusReport.
func (p *Plugin) syncNodeStatus(ctx context.Context, facts machineFacts, last v1.NodeStatus) {
	tick := p.cfg.Clock.NewTicker(nodeStatusUpdate)
	defer tick.Stop()
	lastReport := p.cfg.Clock.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
		}
		st, err := p.nodeStatus(ctx, facts, last.Conditions)
		if err != nil {
			p.cfg.Log.Warn("node status", "err", err)
			continue
		}
		if sameStatus(st, last) && p.cfg.Clock.Since(lastReport) < nodeStatusReport {
			continue
		}
		node, err := p.client.getNode(ctx, p.cfg.NodeName, "0")
		if err == nil {
			node.Status = st
			_, err = p.client.updateNodeStatus(ctx, node)
		}
		if err != nil {
			if ctx.Err() == nil {
				p.cfg.Log.Warn("update node status", "node", p.cfg.NodeName, "err", err)
			}
			continue
		}
		last, lastReport = st, p.cfg.Clock.Now()
	}
}

// joinByCSR makes sure of a node certificate (asking for one with the
// bootstrap credentials if there is none, or it expired), builds the
// client on it and starts its rotation. False: ctx ended first.
func (p *Plugin) joinByCSR(ctx context.Context, sink upstream.Sink) bool {
	for retry := time.Second; !p.creds.valid(p.cfg.NodeName, p.cfg.Clock.Now()); retry = min(retry*2, 30*time.Second) {
		err := p.renewCertificate(ctx, p.bootstrap)
		if err == nil {
			p.cfg.Log.Info("node certificate issued", "node", p.cfg.NodeName, "expires", p.creds.cert.Load().Leaf.NotAfter)
			break
		}
		sink.Connected(fmt.Errorf("TLS bootstrap of node %s: %w", p.cfg.NodeName, err))
		select {
		case <-ctx.Done():
			return false
		case <-p.cfg.Clock.After(retry):
		}
	}
	rc, err := p.creds.restConfig(p.bootstrap)
	if err == nil {
		p.client, err = newAPIClient(rc)
	}
	if err != nil {
		sink.Connected(err)
		return false
	}
	p.reviews.Store(p.client)
	go p.rotateCertificate(ctx, rc)
	return true
}

// renewCertificate asks for a new certificate authenticated by rc, stores
// it and writes the kubeconfig that uses it.
func (p *Plugin) renewCertificate(ctx context.Context, rc *rest.Config) error {
	client, err := certificatesClient(rc)
	if err != nil {
		return err
	}
	if err := requestCertificate(ctx, client, p.cfg.NodeName, p.cfg.CertDir); err != nil {
		return err
	}
	if err := p.creds.load(); err != nil {
		return err
	}
	return writeKubeconfig(p.cfg.Kubeconfig, p.bootstrap, p.cfg.CertDir)
}

// rotateCertificate renews the certificate at 80 % of its lifetime, with
// the node's own credentials (and the bootstrap ones once it expired).
func (p *Plugin) rotateCertificate(ctx context.Context, nodeConfig *rest.Config) {
	for {
		wait := p.creds.rotateAt().Sub(p.cfg.Clock.Now())
		select {
		case <-ctx.Done():
			return
		case <-p.cfg.Clock.After(max(wait, 0)):
		}
		rc := nodeConfig
		if !p.creds.valid(p.cfg.NodeName, p.cfg.Clock.Now()) {
			rc = p.bootstrap
		}
		if err := p.renewCertificate(ctx, rc); err != nil {
			if ctx.Err() == nil {
				p.cfg.Log.Warn("rotate node certificate: trying again in 30s", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-p.cfg.Clock.After(30 * time.Second):
			}
			continue
		}
		p.cfg.Log.Info("node certificate rotated", "expires", p.creds.cert.Load().Leaf.NotAfter)
	}
}
