package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/server"
	"github.com/berth-project/berth/pkg/admission"
	"github.com/berth-project/berth/pkg/agent"
	"github.com/berth-project/berth/pkg/api"
	"github.com/berth-project/berth/pkg/config"
	"github.com/berth-project/berth/pkg/events"
	"github.com/berth-project/berth/pkg/eviction"
	"github.com/berth-project/berth/pkg/kubeletapi"
	"github.com/berth-project/berth/pkg/metrics"
	"github.com/berth-project/berth/pkg/shutdown"
	"github.com/berth-project/berth/pkg/source"
	"github.com/berth-project/berth/pkg/upstream"
	"github.com/berth-project/berth/pkg/upstream/kube"
	"github.com/berth-project/berth/pkg/upstream/manifesturl"
)

// kubeletVersion is what a berth Node reports as its kubeletVersion: the
// Kubernetes release whose API berth speaks, marked as berth's.
const kubeletVersion = "v1.37.2-berth"

// startAgent runs the static pod agent against the CRI endpoint (berthd's
// own socket unless another runtime is named) and serves its local API.
// agentDeps is what the agent takes from berthd's runtime half.
type agentDeps struct {
	images         eviction.ImageReclaimer // image GC, the eviction manager's reclaim
	runtimeMetrics prometheus.Collector    // berth_shims and the dropped log records
}

func startAgent(ctx context.Context, cfg config.Config, deps agentDeps, log *slog.Logger) (*agent.Manager, error) {
	endpoint := cfg.ContainerRuntimeEndpoint
	if endpoint == "" {
		endpoint = "unix://" + cfg.CRISocket
	}
	reg := metrics.New()
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)), grpc.WithChainUnaryInterceptor(reg.RuntimeInterceptor()))
	if err != nil {
		return nil, fmt.Errorf("agent: CRI endpoint %s: %w", endpoint, err)
	}
	nodeName := strings.ToLower(cfg.NodeName)
	if nodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, err
		}
		nodeName = strings.ToLower(h)
	}
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	kubeletListener, err := listenKubeletAPI(cfg)
	if err != nil {
		return nil, err
	}
	if kubeletListener != nil {
		// The Node reports the port bound (--port 0 picks one).
		cfg.Port = kubeletListener.Addr().(*net.TCPAddr).Port
	}
	var readOnlyListener net.Listener
	if cfg.ReadOnlyPort != 0 {
		if readOnlyListener, err = net.Listen("tcp", net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.ReadOnlyPort))); err != nil {
			return nil, fmt.Errorf("kubelet read-only port: %w", err)
		}
	}
	thresholds, _, err := cfg.Eviction().Parse() // its warnings were logged with the config's
	if err != nil {
		return nil, err
	}
	var evictions *eviction.Manager // made below, before anything runs
	pressure := func() (memory, disk bool) {
		p := evictions.Pressure()
		return p.Memory, p.Disk
	}
	plugin, err := upstreamPlugin(cfg, nodeName, rt, runtimeapi.NewImageServiceClient(conn), thresholds, pressure, log)
	if err != nil {
		return nil, err
	}
	var terminated func(namespace, name string, uid types.UID)
	if o, ok := plugin.(upstream.TerminationObserver); ok {
		terminated = o.PodTerminated
	}
	var volumes upstream.VolumeSource
	if v, ok := plugin.(upstream.VolumeSource); ok {
		volumes = v
	}
	var objects upstream.ObjectSource
	if o, ok := plugin.(upstream.ObjectSource); ok {
		objects = o
	}
	capacity, err := admission.Capacity(cfg.Root, cfg.MaxPods)
	if err != nil {
		return nil, fmt.Errorf("node capacity: %w", err)
	}
	recorder := events.New(nil, nodeName)
	mgr := agent.New(agent.Config{
		Allocatable:   admission.Allocatable(capacity, thresholds),
		Events:        recorder,
		Terminated:    terminated,
		VolumeFiles:   volumes,
		Objects:       objects,
		NodeName:      nodeName,
		LogDir:        cfg.PodLogsDir,
		LogLinkDir:    filepath.Join(filepath.Dir(cfg.PodLogsDir), "containers"),
		PodDir:        filepath.Join(cfg.Root, "pods"),
		CgroupRoot:    cfg.CgroupRoot,
		Runtime:       rt,
		Images:        runtimeapi.NewImageServiceClient(conn),
		Log:           log,
		ResolvConf:    cfg.ResolvConf,
		ClusterDNS:    cfg.ClusterDNS,
		ClusterDomain: cfg.ClusterDomain,

		SystemdCgroups:        cfg.CgroupDriver == "systemd",
		SwapBehavior:          cfg.SwapBehavior,
		MaxRestartPeriod:      cfg.MaxContainerRestartPeriod.Duration,
		MaxParallelImagePulls: cfg.MaxParallelImagePulls,
		SyncDuration:          reg.ObservePodWorker,
	})
	if r, ok := plugin.(upstream.StatusReporter); ok {
		r.ReportStatuses(mgr.Status())
	}
	evictions = eviction.New(eviction.Config{
		Thresholds:               thresholds,
		MaxPodGracePeriod:        cfg.EvictionMaxPodGracePeriod,
		PressureTransitionPeriod: cfg.EvictionPressureTransitionPeriod.Duration,
		Root:                     cfg.Root,
		PodDir:                   filepath.Join(cfg.Root, "pods"),
		LogDir:                   cfg.PodLogsDir,
		Pods:                     mgr.Status(),
		Evictor:                  mgr,
		Stats:                    rt,
		ImageFS:                  runtimeapi.NewImageServiceClient(conn),
		Images:                   deps.images,
		Log:                      log,
	})
	reg.MustRegister(evictions.Collector(), deps.runtimeMetrics)
	if r, ok := plugin.(upstream.EventReporter); ok {
		recorder.Watch(r.ReportEvent)
	}
	var static func([]*v1.Pod)
	if m, ok := plugin.(upstream.MirrorPods); ok {
		static = m.StaticPods
	}
	mux := source.NewMux(source.MuxConfig{
		Static:   static,
		Apply:    func(pods []*v1.Pod, complete bool) error { return mgr.SetPods(ctx, pods, complete) },
		Upstream: pluginName(plugin),
		Journal:  filepath.Join(cfg.Root, "upstream", pluginName(plugin)+".json"),
		Log:      log,
	})
	apiSrv := api.New(mgr.Status(), mgr, mux)
	// The node as the agent sees it, for berthctl status.
	apiSrv.Mount("GET /node", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			eviction.Pressure
		}{nodeName, server.Version, evictions.Pressure()})
	}))
	probes := prometheus.NewRegistry()
	probes.MustRegister(mgr.ProbeCollector())
	apiSrv.Mount("GET /metrics/probes", promhttp.HandlerFor(probes, promhttp.HandlerOpts{}))
	watchPods := reg.WatchPods(mgr.Status(), recorder, time.Now)
	go watchPods(ctx)
	apiSrv.Mount("GET /metrics", promhttp.HandlerFor(reg.Gatherer(), promhttp.HandlerOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "berth_manifest_errors",
		Help: "Number of manifest files that could not be read or are invalid (their last valid pods keep running).",
	}, func() float64 {
		n := 0
		for _, f := range mux.Manifests() {
			if f.Err != nil {
				n++
			}
		}
		return float64(n)
	}))
	if plugin != nil {
		if _, ok := plugin.(*kube.Plugin); ok {
			reg.MustRegister(kube.Collectors()...)
		}
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "berth_upstream_connected",
			Help:        "Whether the upstream control plane was reachable at the last attempt (1) or not (0).",
			ConstLabels: prometheus.Labels{"plugin": plugin.Name()},
		}, func() float64 {
			if mux.Upstream().Connection == "connected" {
				return 1
			}
			return 0
		}))
	}
	if kubeletListener != nil || readOnlyListener != nil {
		api := kubeletapi.Config{
			NodeName: nodeName, Listener: kubeletListener, Pods: mgr.Status(),
			Containers: rt, Streams: rt, Stats: rt, ContainerMetrics: rt, ImageFS: runtimeapi.NewImageServiceClient(conn),
			RootDir: cfg.Root, PodDir: filepath.Join(cfg.Root, "pods"), PodLogsDir: cfg.PodLogsDir, Metrics: reg.Gatherer(), ProbeMetrics: probes, Log: log.With("api", "kubelet"),
			ReadOnlyListener: readOnlyListener,
		}
		if err := startKubeletAPI(ctx, cfg, plugin, api); err != nil {
			return nil, err
		}
	}
	socket := cfg.APISocket
	if socket == "" {
		socket = filepath.Join(cfg.State, "api.sock")
	}
	l, err := listenSocket(socket)
	if err != nil {
		return nil, fmt.Errorf("agent API: %w", err)
	}
	listeners := []net.Listener{l}
	if cfg.APIAddress != "" {
		tl, err := net.Listen("tcp", cfg.APIAddress)
		if err != nil {
			return nil, fmt.Errorf("agent API: %w", err)
		}
		listeners = append(listeners, tl)
	}
	srv := &http.Server{Handler: apiSrv.Handler()}
	for _, l := range listeners {
		go srv.Serve(l)
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if v, err := rt.Version(ctx, &runtimeapi.VersionRequest{}); err == nil {
			mgr.SetRuntimeName(v.GetRuntimeName())
		}
		go mgr.Run(ctx)
		go evictions.Run(ctx)
		if g := cfg.ShutdownGracePeriod.Duration; g > 0 {
			go func() {
				err := shutdown.Run(ctx, shutdown.Config{GracePeriod: g, CriticalGracePeriod: cfg.ShutdownGracePeriodCriticalPods.Duration,
					Pods: mgr.Status(), Terminator: mgr, Log: log})
				if err != nil {
					log.Warn("pods will not be stopped before the node shuts down", "err", err)
				}
			}()
		}
		if plugin != nil {
			go func() {
				if err := plugin.Run(ctx, mux); err != nil {
					log.Error("upstream stopped: its last pods keep running", "plugin", plugin.Name(), "err", err)
				}
			}()
		}
		if cfg.StaticPodPath == "" {
			mux.Files(nil)
			return
		}
		dir := source.Dir{Path: cfg.StaticPodPath, NodeName: nodeName, Log: log}
		if err := dir.Run(ctx, mux.Files); err != nil {
			log.Error("manifest source stopped", "err", err)
		}
	}()
	log.Info("agent running", "manifests", cfg.StaticPodPath, "upstream", cfg.UpstreamPlugin(), "node", nodeName, "runtime", endpoint, "api", socket)
	return mgr, nil
}

// upstreamPlugin is the configured control plane plugin, nil for none.
func upstreamPlugin(cfg config.Config, nodeName string, rt runtimeapi.RuntimeServiceClient, images runtimeapi.ImageServiceClient,
	hardEviction []eviction.Threshold, pressure func() (memory, disk bool), log *slog.Logger) (upstream.Plugin, error) {
	switch cfg.UpstreamPlugin() {
	case "kubernetes":
		certDir := cfg.CertDir
		if certDir == "" {
			certDir = filepath.Join(cfg.Root, "pki")
		}
		return kube.New(kube.Config{
			Kubeconfig:          cfg.Kubeconfig,
			BootstrapKubeconfig: cfg.BootstrapKubeconfig,
			CertDir:             certDir,
			NodeName:            nodeName,
			NodeIP:              cfg.NodeIP,
			NodeLabels:          cfg.NodeLabels,
			Taints:              cfg.RegisterWithTaints,
			Runtime:             rt,
			Images:              images,
			Root:                cfg.Root,
			Version:             kubeletVersion,
			KubeletPort:         int32(cfg.Port),
			MaxPods:             cfg.MaxPods,
			HardEviction:        hardEviction,
			Pressure:            pressure,
			Log:                 log.With("upstream", "kubernetes"),
		})
	case "url":
		return manifesturl.New(manifesturl.Config{
			URL:      cfg.StaticPodURL,
			Header:   cfg.StaticPodURLHeader,
			NodeName: nodeName,
			Interval: cfg.HTTPCheckFrequency.Duration,
			Log:      log.With("upstream", "url"),
		})
	}
	return nil, nil
}

func pluginName(p upstream.Plugin) string {
	if p == nil {
		return ""
	}
	return p.Name()
}

// listenKubeletAPI listens where the kubelet API is served: only a
// Kubernetes node has one.
func listenKubeletAPI(cfg config.Config) (net.Listener, error) {
	if cfg.UpstreamPlugin() != "kubernetes" {
		return nil, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("kubelet API: %w", err)
	}
	return l, nil
}

// kubeletAuth is what the kubernetes plugin lends the kubelet API: its
// reviews of callers, and the API server's CA.
type kubeletAuth interface {
	kubeletapi.TokenReviewer
	kubeletapi.AccessReviewer
	ClusterCA() []byte
}

var _ kubeletAuth = (*kube.Plugin)(nil)

// startKubeletAPI completes api with the serving certificate and the
// callers' authentication, and serves it until ctx ends. Without a
// secure listener (no control plane to review callers) it serves the
// read-only port alone, as a standalone kubelet with one would.
func startKubeletAPI(ctx context.Context, cfg config.Config, plugin upstream.Plugin, api kubeletapi.Config) error {
	if api.Listener == nil {
		return serveKubeletAPI(ctx, api)
	}
	auth, ok := plugin.(kubeletAuth)
	if !ok {
		return fmt.Errorf("kubelet API: upstream %s cannot review its callers", plugin.Name())
	}
	certDir := cfg.CertDir
	if certDir == "" {
		certDir = filepath.Join(cfg.Root, "pki")
	}
	names := []string{api.NodeName}
	if h, err := os.Hostname(); err == nil && strings.ToLower(h) != api.NodeName {
		names = append(names, strings.ToLower(h))
	}
	cert, err := kubeletapi.ServingCertificate(cfg.TLSCertFile, cfg.TLSPrivateKeyFile, certDir, names, nodeIPs(cfg.NodeIP), time.Now())
	if err != nil {
		return fmt.Errorf("kubelet API: %w", err)
	}
	api.Certificate, api.Tokens, api.Access = cert, auth, auth
	ca, source := auth.ClusterCA(), "the kubeconfig's CA bundle"
	if cfg.ClientCAFile != "" {
		if ca, err = os.ReadFile(cfg.ClientCAFile); err != nil {
			return fmt.Errorf("kubelet API: client CA: %w", err)
		}
		source = cfg.ClientCAFile
	}
	if len(ca) > 0 {
		if api.ClientCAs, err = kubeletapi.ClientCAs(ca); err != nil {
			return fmt.Errorf("kubelet API: client CA from %s: %w", source, err)
		}
	} else {
		api.Log.Warn("kubelet API: no client CA (the kubeconfig names none; see --client-ca-file): only bearer tokens authenticate")
	}
	return serveKubeletAPI(ctx, api)
}

func serveKubeletAPI(ctx context.Context, api kubeletapi.Config) error {
	srv, err := kubeletapi.New(api)
	if err != nil {
		return err
	}
	go func() {
		if err := srv.Run(ctx); err != nil {
			api.Log.Error("kubelet API stopped", "err", err)
		}
	}()
	return nil
}

// nodeIPs are the addresses the kubelet API's certificate names: the
// node IP, or else the host's global addresses.
func nodeIPs(nodeIP string) []net.IP {
	if ip := net.ParseIP(nodeIP); ip != nil {
		return []net.IP{ip}
	}
	var out []net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.IsGlobalUnicast() {
			out = append(out, n.IP)
		}
	}
	return out
}
