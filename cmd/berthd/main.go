// Command berthd is the berth daemon: for now it serves the CRI v1
// RuntimeService and ImageService on a unix socket, for kubelet, crictl
// or any CRI client.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/cgroups/systemd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/cgroup"
	"github.com/berth-project/berth/cri/enter"
	"github.com/berth-project/berth/cri/image"
	"github.com/berth-project/berth/cri/network"
	"github.com/berth-project/berth/cri/nri"
	"github.com/berth-project/berth/cri/runc"
	"github.com/berth-project/berth/cri/server"
	"github.com/berth-project/berth/cri/streaming"
	"github.com/berth-project/berth/pkg/agent"
	"github.com/berth-project/berth/pkg/config"
	"github.com/berth-project/berth/pkg/eviction"
	"github.com/berth-project/berth/pkg/imagegc"
)

func main() {
	err := run()
	if errors.Is(err, flag.ErrHelp) {
		return // the usage was printed: what was asked for
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(1)
	}
}

func run() error {
	// berthd's live heap is small and long-lived: collecting at 50 %
	// growth instead of Go's 100 % keeps its footprint down for little CPU.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	cfg, fileWarnings, err := parseFlags(os.Args[1:])
	if err != nil {
		return err
	}
	warnings, err := cfg.Validate()
	if err != nil {
		return err
	}
	warnings = append(fileWarnings, warnings...)
	if w, err := cfg.ResolveCgroupDriver(systemd.IsRunningSystemd()); err != nil {
		return err
	} else if w != "" {
		warnings = append(warnings, w)
	}
	if cfg.FailSwapOn {
		if err := refuseSwap("/proc/swaps"); err != nil {
			return err
		}
	}
	if cfg.SwapBehavior == "LimitedSwap" && !cgroup.Unified() {
		return errors.New("swapBehavior LimitedSwap needs cgroup v2 (this host runs cgroup v1): use NoSwap, as kubelet requires")
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(os.Stderr, logOptions(level)))
	for _, w := range warnings {
		log.Warn(w)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return serve(ctx, cfg, log)
}

// logOptions: structured lines with their level; under journald (which
// stamps every line itself) without a time of their own.
func logOptions(level slog.Level) *slog.HandlerOptions {
	opts := &slog.HandlerOptions{Level: level}
	if stderrIsJournal() {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return opts
}

// stderrIsJournal: systemd names the journal stream it connected in
// JOURNAL_STREAM ("device:inode"); stderr may since have been redirected.
func stderrIsJournal() bool {
	var st syscall.Stat_t
	if syscall.Fstat(int(os.Stderr.Fd()), &st) != nil {
		return false
	}
	return os.Getenv("JOURNAL_STREAM") == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// parseFlags reads the configuration: defaults, then the --config file,
// then the flags set on the command line. Every flag is bound to its
// field, and the flags are parsed again over the file's values, so a
// flag not given never replaces what the file says.
// The file's warnings name what it sets that berth does not support.
func parseFlags(args []string) (config.Config, []string, error) {
	cfg := config.Default()
	fs, configFile, configDir := flagSet(&cfg)
	if err := fs.Parse(args); err != nil {
		return cfg, nil, err
	}
	if *configFile == "" && *configDir == "" {
		return cfg, nil, nil
	}
	cfg = config.Default()
	var warnings []string
	if *configFile != "" {
		w, err := cfg.LoadFile(*configFile)
		if err != nil {
			return cfg, nil, err
		}
		warnings = w
	}
	if *configDir != "" {
		w, err := cfg.LoadDir(*configDir)
		if err != nil {
			return cfg, nil, err
		}
		warnings = append(warnings, w...)
	}
	fs, _, _ = flagSet(&cfg)
	return cfg, warnings, fs.Parse(args)
}

// flagSet is berthd's flags bound to c's fields, c's values their defaults.
func flagSet(c *config.Config) (fs *flag.FlagSet, configFile, configDir *string) {
	fs = flag.NewFlagSet("berthd", flag.ContinueOnError)
	configFile = fs.String("config", "", "configuration file, YAML or JSON: a KubeletConfiguration and/or berth's own settings (flags override it)")
	fs.StringVar(&c.CRISocket, "cri-socket", c.CRISocket, "unix socket serving the CRI")
	fs.StringVar(&c.Root, "root", c.Root, "directory for persistent state (records, images)")
	fs.StringVar(&c.State, "state", c.State, "directory for runtime state (shim sockets, netns, runc state)")
	fs.StringVar(&c.RuncBinary, "runc", c.RuncBinary, "runc binary")
	fs.StringVar(&c.ShimBinary, "shim", c.ShimBinary, "berth-shim binary")
	fs.StringVar(&c.PauseBinary, "pause", c.PauseBinary, "berth-pause binary")
	fs.StringVar(&c.ExecBinary, "exec-helper", c.ExecBinary, "berth-exec binary, which runs execs and exec probes without runc (\"\": always runc)")
	fs.Func("cni-bin-dir", "comma-separated CNI plugin directories (default "+strings.Join(c.CNIBinDirs, ",")+")", func(s string) error {
		c.CNIBinDirs = strings.Split(s, ",")
		return nil
	})
	fs.StringVar(&c.CNIConfDir, "cni-conf-dir", c.CNIConfDir, "CNI network configuration directory")
	fs.StringVar(&c.CgroupDriver, "cgroup-driver", c.CgroupDriver, "cgroupfs or systemd (default: systemd where systemd runs the host, else cgroupfs)")
	fs.StringVar(&c.PodCIDR, "pod-cidr", c.PodCIDR, "pod CIDR; writes the default pod network when none is configured")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.RegistryConfig, "registry-config", c.RegistryConfig, "registry configuration file (mirrors, plain HTTP, CAs), YAML or JSON")
	fs.IntVar(&c.ImageGCHighThresholdPercent, "image-gc-high-threshold", c.ImageGCHighThresholdPercent, "image filesystem usage percent that starts image garbage collection (100 disables it)")
	fs.IntVar(&c.ImageGCLowThresholdPercent, "image-gc-low-threshold", c.ImageGCLowThresholdPercent, "image filesystem usage percent image garbage collection frees down to")
	fs.DurationVar(&c.ImageMinimumGCAge.Duration, "minimum-image-ttl-duration", c.ImageMinimumGCAge.Duration, "minimum age of an unused image before it may be garbage collected")
	fs.StringVar(&c.StreamingAddress, "streaming-address", c.StreamingAddress, "host:port of the exec/attach/port-forward streaming server (port 0: a free port)")
	fs.StringVar(&c.StaticPodPath, "pod-manifest-path", c.StaticPodPath, "directory of static pod manifests (\"\": no agent, only the CRI runtime)")
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "node name appended to static pod names, and the Node's name (default: the host name)")
	fs.StringVar(&c.NodeName, "hostname-override", c.NodeName, "kubelet's spelling of --node-name")
	fs.StringVar(&c.PodLogsDir, "pod-logs-dir", c.PodLogsDir, "directory of the pods' container logs")
	fs.StringVar(&c.APISocket, "api-socket", c.APISocket, "unix socket of the read-only local API (default: <state>/api.sock)")
	fs.StringVar(&c.APIAddress, "api-address", c.APIAddress, "host:port to also serve the local API on")
	fs.StringVar(&c.ContainerRuntimeEndpoint, "container-runtime-endpoint", c.ContainerRuntimeEndpoint, "CRI endpoint the agent drives (default: berthd's own)")
	fs.StringVar(&c.Upstream, "upstream", c.Upstream, "control plane plugin: none, url or kubernetes (default: url with --manifest-url, kubernetes with --kubeconfig)")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "kubeconfig with this node's credentials: berth joins that cluster as a Node")
	fs.StringVar(&c.BootstrapKubeconfig, "bootstrap-kubeconfig", c.BootstrapKubeconfig, "kubeconfig with a bootstrap token: berth asks the cluster for a node certificate and writes --kubeconfig")
	fs.StringVar(&c.CertDir, "cert-dir", c.CertDir, "directory of the node's client certificate and the kubelet API's self-signed one (default: <root>/pki)")
	fs.StringVar(&c.Address, "address", c.Address, "IP address the kubelet API listens on (upstream kubernetes)")
	fs.IntVar(&c.Port, "port", c.Port, "port of the kubelet API (upstream kubernetes; 0: a free port), reported in the Node's status")
	fs.StringVar(&c.TLSCertFile, "tls-cert-file", c.TLSCertFile, "serving certificate of the kubelet API (default: a self-signed kubelet.crt made in --cert-dir)")
	fs.StringVar(&c.TLSPrivateKeyFile, "tls-private-key-file", c.TLSPrivateKeyFile, "the key of --tls-cert-file")
	fs.StringVar(&c.ClientCAFile, "client-ca-file", c.ClientCAFile, "CA bundle verifying the kubelet API's client certificates (default: the CA bundle of --kubeconfig, the API server's)")
	fs.StringVar(&c.NodeIP, "node-ip", c.NodeIP, "the Node's InternalIP (default: the host's first global address)")
	fs.Func("node-labels", "labels of the Node, 'key=value,key=value'", func(s string) (err error) {
		c.NodeLabels, err = config.ParseNodeLabels(s)
		return err
	})
	fs.Func("register-with-taints", "taints of the Node, 'key=value:Effect,…'", func(s string) (err error) {
		c.RegisterWithTaints, err = config.ParseTaints(s)
		return err
	})
	fs.StringVar(&c.StaticPodURL, "manifest-url", c.StaticPodURL, "URL serving static pods (a Pod, a PodList or multi-document YAML), polled every --http-check-frequency")
	fs.Func("manifest-url-header", "HTTP headers for --manifest-url, as 'key:value,key:value' (may be repeated)", func(s string) error {
		if c.StaticPodURLHeader == nil {
			c.StaticPodURLHeader = map[string][]string{}
		}
		return config.ParseURLHeader(c.StaticPodURLHeader, s)
	})
	fs.DurationVar(&c.HTTPCheckFrequency.Duration, "http-check-frequency", c.HTTPCheckFrequency.Duration, "how often --manifest-url is polled")
	fs.StringVar(&c.ContainerLogMaxSize, "container-log-max-size", c.ContainerLogMaxSize, "size at which a container's log is rotated (\"0\": never), as kubelet")
	fs.IntVar(&c.ContainerLogMaxFiles, "container-log-max-files", c.ContainerLogMaxFiles, "log files kept per container, the live one included, as kubelet")
	fs.BoolVar(&c.FailSwapOn, "fail-swap-on", c.FailSwapOn, "refuse to start while swap is on, as kubelet")
	fs.IntVar(&c.ReadOnlyPort, "read-only-port", c.ReadOnlyPort, "port of kubelet's unauthenticated read-only API on --address (0: none)")
	fs.StringVar(&c.HealthzBindAddress, "healthz-bind-address", c.HealthzBindAddress, "IP address /healthz is served on")
	fs.IntVar(&c.HealthzPort, "healthz-port", c.HealthzPort, "port /healthz is served on (0: none)")
	fs.IntVar(&c.MaxPods, "max-pods", c.MaxPods, "the most pods this node runs")
	fs.StringVar(&c.ResolvConf, "resolv-conf", c.ResolvConf, "resolver configuration pods' DNS starts from (\"\": none)")
	fs.Func("cluster-dns", "comma-separated DNS server IPs of the cluster, for ClusterFirst pods", func(s string) error {
		c.ClusterDNS = strings.Split(s, ",")
		return nil
	})
	fs.StringVar(&c.ClusterDomain, "cluster-domain", c.ClusterDomain, "the cluster's DNS domain, searched by ClusterFirst pods")
	fs.IntVar(&c.MaxParallelImagePulls, "max-parallel-image-pulls", c.MaxParallelImagePulls, "image pulls in flight at most (0: no bound)")
	fs.BoolFunc("serialize-image-pulls", "pull one image at a time, as kubelet's default (=false lifts a bound of one)", func(s string) error {
		on, err := strconv.ParseBool(s)
		switch {
		case err != nil:
			return err
		case on:
			c.MaxParallelImagePulls = 1
		case c.MaxParallelImagePulls == 1:
			c.MaxParallelImagePulls = 0
		}
		return nil
	})
	fs.DurationVar(&c.MaxContainerRestartPeriod.Duration, "max-container-restart-period", c.MaxContainerRestartPeriod.Duration,
		"longest restart back-off of a crashing container (kubelet's crashLoopBackOff.maxContainerRestartPeriod)")
	evictionMap := func(field *map[string]string, sep byte) func(string) error {
		return func(s string) (err error) {
			*field, err = eviction.ParseList(s, sep)
			if err == nil {
				err = eviction.CheckValues(*field, sep == '=')
			}
			return err
		}
	}
	fs.Func("eviction-hard", "hard eviction thresholds, 'memory.available<100Mi,nodefs.available<10%,…' (replaces the defaults)", evictionMap(&c.EvictionHard, '<'))
	fs.Func("eviction-soft", "soft eviction thresholds, 'memory.available<1Gi,…' (each needs its grace period)", evictionMap(&c.EvictionSoft, '<'))
	fs.Func("eviction-soft-grace-period", "how long each soft threshold must hold before pods are evicted, 'memory.available=1m30s,…'", evictionMap(&c.EvictionSoftGracePeriod, '='))
	fs.Func("eviction-minimum-reclaim", "how much beyond each threshold an eviction frees, 'nodefs.available=1Gi,…'", evictionMap(&c.EvictionMinimumReclaim, '='))
	fs.Int64Var(&c.EvictionMaxPodGracePeriod, "eviction-max-pod-grace-period", c.EvictionMaxPodGracePeriod, "longest grace period (seconds) of a pod evicted for a soft threshold")
	fs.DurationVar(&c.EvictionPressureTransitionPeriod.Duration, "eviction-pressure-transition-period", c.EvictionPressureTransitionPeriod.Duration,
		"how long a pressure condition stays after its thresholds stop being met")
	fs.StringVar(&c.CgroupRoot, "cgroup-root", c.CgroupRoot, "root of the pods' QoS cgroup hierarchy")
	fs.StringVar(&c.NRISocket, "nri-socket", c.NRISocket, "socket NRI plugins connect to (e.g. /var/run/nri/nri.sock; \"\": no NRI)")
	fs.StringVar(&c.NRIPluginPath, "nri-plugin-path", c.NRIPluginPath, "NRI plugins berthd starts itself")
	fs.StringVar(&c.NRIPluginConfigPath, "nri-plugin-config-path", c.NRIPluginConfigPath, "configuration of the NRI plugins berthd starts")
	fs.DurationVar(&c.NRIRequestTimeout.Duration, "nri-request-timeout", c.NRIRequestTimeout.Duration, "how long an NRI plugin may take to answer (then it is disconnected)")
	configDir = fs.String("config-dir", "", "drop-in directory: its *.conf files (YAML or JSON, as --config) are read after --config in lexical order, as kubelet's --config-dir")
	return fs, configFile, configDir
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	notify(log, "STATUS=opening the image store")
	images, err := image.Open(filepath.Join(cfg.Root, "images"), log)
	if err != nil {
		return err
	}
	if err := loadRegistries(images, cfg.RegistryConfig, log); err != nil {
		return err
	}
	pause, err := os.ReadFile(cfg.PauseBinary)
	if err != nil {
		return fmt.Errorf("pause binary: %w", err)
	}
	// Listed (pinned) so image tools and GC see what sandboxes run.
	if _, err := images.EnsureBuiltin(server.PauseImage, map[string][]byte{"pause": pause}, v1.Config{Entrypoint: []string{"/pause"}}); err != nil {
		return err
	}
	net, err := network.New(network.Config{
		ConfDir:  cfg.CNIConfDir,
		BinDirs:  cfg.CNIBinDirs,
		CacheDir: filepath.Join(cfg.State, "cni-cache"),
		PodCIDR:  cfg.PodCIDR,
	})
	if err != nil {
		return err
	}
	if cfg.PodCIDR != "" {
		if err := net.UpdatePodCIDR(cfg.PodCIDR); err != nil {
			return err
		}
	}
	streamListener, err := listenTCP(cfg.StreamingAddress)
	if err != nil {
		return fmt.Errorf("streaming server: %w", err)
	}
	healthzListener, err := listenHealthz(cfg)
	if err != nil {
		return err
	}
	minOOM, note := server.MinOOMScoreAdj()
	if note != "" {
		log.Warn(note)
	}
	logMax, err := cfg.LogMaxBytes()
	if err != nil {
		return err
	}
	notify(log, "STATUS=recovering sandboxes and containers")
	svc, err := server.New(ctx, server.Config{
		Root:           cfg.Root,
		State:          cfg.State,
		ShimBinary:     cfg.ShimBinary,
		PauseBinary:    cfg.PauseBinary,
		Exec:           execHelper(cfg.ExecBinary),
		Runc:           &runc.Runc{Binary: cfg.RuncBinary, Root: filepath.Join(cfg.State, "runc"), SystemdCgroup: cfg.CgroupDriver == "systemd"},
		CgroupDriver:   cgroup.Driver(cfg.CgroupDriver),
		ShimScopes:     systemd.IsRunningSystemd(),
		MinOOMScoreAdj: minOOM,
		CNIConfDir:     cfg.CNIConfDir,
		Streaming:      streaming.Config{Listener: streamListener},
		LogMaxSize:     logMax,
		LogMaxFiles:    cfg.ContainerLogMaxFiles,
		NRI: nri.Config{Socket: cfg.NRISocket, PluginPath: cfg.NRIPluginPath,
			PluginConfigPath: cfg.NRIPluginConfigPath, Version: server.Version, RequestTimeout: cfg.NRIRequestTimeout.Duration},
	}, server.Deps{Images: images, Network: net, Log: log})
	if err != nil {
		return err
	}
	gc, err := imageGC(cfg, cfg.CRISocket, log)
	if err != nil {
		return err
	}
	// Listen before the image GC starts: it talks to berthd through this
	// very socket.
	l, err := listenSocket(cfg.CRISocket)
	if err != nil {
		return err
	}
	var mgr *agent.Manager
	if cfg.StaticPodPath != "" || cfg.UpstreamPlugin() != "none" {
		notify(log, "STATUS=starting the agent")
		if mgr, err = startAgent(ctx, cfg, agentDeps{images: gc, runtimeMetrics: svc.Collector()}, log.With("component", "agent")); err != nil {
			return err
		}
	}
	go gc.Run(ctx)  // returns when ctx ends
	go svc.Run(ctx) // exit watchers and event streams; returns when ctx ends
	go func() {
		if err := svc.ServeStreams(ctx); err != nil {
			log.Error("streaming server stopped", "error", err)
		}
	}()
	go announce(ctx, cfg, mgr, healthzListener, log)
	return serveCRI(ctx, l, cfg.CRISocket, svc, log)
}

// announce tells systemd that berthd is ready once its CRI socket answers
// and the agent has taken in its pods (adopting what runs of them), keeps
// its watchdog fed while both work, and says when berthd stops. /healthz
// (if healthz is not nil) answers the same check.
func announce(ctx context.Context, cfg config.Config, mgr *agent.Manager, healthz net.Listener, log *slog.Logger) {
	conn, err := grpc.NewClient("unix://"+cfg.CRISocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Error("systemd notify: CRI client", "err", err)
		return
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	alive := func(ctx context.Context) error {
		if _, err := rt.Version(ctx, &runtimeapi.VersionRequest{}, grpc.WaitForReady(true)); err != nil {
			return fmt.Errorf("CRI socket %s: %w", cfg.CRISocket, err)
		}
		if mgr != nil {
			return mgr.Responsive(ctx)
		}
		return nil
	}
	if healthz != nil {
		go serveHealthz(ctx, healthz, alive, log)
	}
	if err := alive(ctx); err != nil {
		return // ctx ended
	}
	status := "STATUS=serving the CRI on " + cfg.CRISocket
	if mgr != nil {
		notify(log, "STATUS=adopting the pods")
		select {
		case <-mgr.Applied():
		case <-ctx.Done():
			return
		}
		status += "; agent running"
	}
	notify(log, daemon.SdNotifyReady+"\n"+status)
	go watchdog(ctx, alive, log)
	<-ctx.Done()
	notify(log, daemon.SdNotifyStopping+"\nSTATUS=stopping (containers keep running)")
}

// loadRegistries applies the registry configuration. The default file may
// be absent; a file named on purpose must exist.
func loadRegistries(images *image.Store, path string, log *slog.Logger) error {
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); os.IsNotExist(err) && path == config.DefaultRegistryConfig {
		return nil
	}
	rc, err := image.LoadRegistryConfig(path)
	if err != nil {
		return err
	}
	if err := images.SetRegistries(rc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	log.Info("registry configuration loaded", "file", path, "registries", len(rc.Registries))
	return nil
}

// imageGC collects unused images through berthd's own CRI socket, exactly
// as it would through containerd's.
func imageGC(cfg config.Config, socket string, log *slog.Logger) (*imagegc.GC, error) {
	gcCfg := imagegc.DefaultConfig()
	gcCfg.HighThresholdPercent = cfg.ImageGCHighThresholdPercent
	gcCfg.LowThresholdPercent = cfg.ImageGCLowThresholdPercent
	gcCfg.MinAge = cfg.ImageMinimumGCAge.Duration
	warnings, err := gcCfg.Validate()
	if err != nil {
		return nil, fmt.Errorf("image garbage collection: %w", err)
	}
	for _, w := range warnings {
		log.Warn("image garbage collection: " + w)
	}
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return imagegc.New(gcCfg, runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn), imagegc.WithLogger(log.With("component", "imagegc")))
}

// listenSocket replaces a stale socket file with a fresh listener. (Two
// daemons on one root cannot get this far: the root is locked.)
func listenSocket(socket string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(socket), 0o711); err != nil {
		return nil, err
	}
	if err := os.Remove(socket); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	return listenUnix(socket)
}

// serveCRI serves the CRI and berth's own services on l until ctx ends.
func serveCRI(ctx context.Context, l net.Listener, socket string, svc *server.Service, log *slog.Logger) error {
	srv := grpc.NewServer(grpc.UnaryInterceptor(server.Interceptor(log)), grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20))
	runtimeapi.RegisterRuntimeServiceServer(srv, svc)
	runtimeapi.RegisterImageServiceServer(srv, svc)
	server.RegisterAdmin(srv, svc)
	go func() {
		<-ctx.Done()
		// A stream whose client stopped reading (GetContainerEvents)
		// would hold a graceful stop forever.
		force := time.AfterFunc(10*time.Second, srv.Stop)
		srv.GracefulStop()
		force.Stop()
	}()
	log.Info("berthd serving CRI", "socket", socket, "version", server.Version)
	return srv.Serve(l)
}

// listenTCP listens on addr (host:port).
func listenTCP(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// listenUnix listens on socket with mode 0660: root and the socket's
// group may talk to the runtime, nobody else.
func listenUnix(socket string) (net.Listener, error) {
	old := syscall.Umask(0o117)
	l, err := net.Listen("unix", socket)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", socket, err)
	}
	return l, nil
}

// execHelper is berth-exec, or nil when every exec goes through runc.
func execHelper(binary string) *enter.Helper {
	if binary == "" {
		return nil
	}
	return &enter.Helper{Binary: binary}
}
