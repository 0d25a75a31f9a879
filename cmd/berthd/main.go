// Command berthd is the berth daemon: for now it serves the CRI v1
// RuntimeService and ImageService on a unix socket, for kubelet, crictl
// or any CRI client.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/cri/cgroup"
	"github.com/berth-project/berth/cri/image"
	"github.com/berth-project/berth/cri/network"
	"github.com/berth-project/berth/cri/runc"
	"github.com/berth-project/berth/cri/server"
	"github.com/berth-project/berth/pkg/config"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := config.Default()
	fs := flag.NewFlagSet("berthd", flag.ContinueOnError)
	configFile := fs.String("config", "", "JSON configuration file (flags override it)")
	fs.StringVar(&cfg.CRISocket, "cri-socket", cfg.CRISocket, "unix socket serving the CRI")
	fs.StringVar(&cfg.Root, "root", cfg.Root, "directory for persistent state (records, images)")
	fs.StringVar(&cfg.State, "state", cfg.State, "directory for runtime state (shim sockets, netns, runc state)")
	fs.StringVar(&cfg.RuncBinary, "runc", cfg.RuncBinary, "runc binary")
	fs.StringVar(&cfg.ShimBinary, "shim", cfg.ShimBinary, "berth-shim binary")
	fs.StringVar(&cfg.PauseBinary, "pause", cfg.PauseBinary, "berth-pause binary")
	cniBin := fs.String("cni-bin-dir", strings.Join(cfg.CNIBinDirs, ","), "comma-separated CNI plugin directories")
	fs.StringVar(&cfg.CNIConfDir, "cni-conf-dir", cfg.CNIConfDir, "CNI network configuration directory")
	fs.StringVar(&cfg.CgroupDriver, "cgroup-driver", cfg.CgroupDriver, "cgroupfs or systemd")
	fs.StringVar(&cfg.PodCIDR, "pod-cidr", cfg.PodCIDR, "pod CIDR; writes the default pod network when none is configured")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if *configFile != "" {
		// The file comes before the flags that were set explicitly.
		fromFlags := cfg
		cfg = config.Default()
		if err := cfg.LoadFile(*configFile); err != nil {
			return err
		}
		fs.Visit(func(f *flag.Flag) { applyFlag(&cfg, fromFlags, f.Name) })
	}
	cfg.CNIBinDirs = strings.Split(*cniBin, ",")

	warnings, err := cfg.Validate()
	if err != nil {
		return err
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	for _, w := range warnings {
		log.Warn(w)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return serve(ctx, cfg, log)
}

// applyFlag copies one explicitly set flag's value over the file's.
func applyFlag(cfg *config.Config, from config.Config, name string) {
	switch name {
	case "cri-socket":
		cfg.CRISocket = from.CRISocket
	case "root":
		cfg.Root = from.Root
	case "state":
		cfg.State = from.State
	case "runc":
		cfg.RuncBinary = from.RuncBinary
	case "shim":
		cfg.ShimBinary = from.ShimBinary
	case "pause":
		cfg.PauseBinary = from.PauseBinary
	case "cni-conf-dir":
		cfg.CNIConfDir = from.CNIConfDir
	case "cgroup-driver":
		cfg.CgroupDriver = from.CgroupDriver
	case "pod-cidr":
		cfg.PodCIDR = from.PodCIDR
	case "log-level":
		cfg.LogLevel = from.LogLevel
	}
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	images, err := image.Open(filepath.Join(cfg.Root, "images"))
	if err != nil {
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
	minOOM, note := server.MinOOMScoreAdj()
	if note != "" {
		log.Warn(note)
	}
	svc, err := server.New(ctx, server.Config{
		Root:           cfg.Root,
		State:          cfg.State,
		ShimBinary:     cfg.ShimBinary,
		PauseBinary:    cfg.PauseBinary,
		Runc:           &runc.Runc{Binary: cfg.RuncBinary, Root: filepath.Join(cfg.State, "runc"), SystemdCgroup: cfg.CgroupDriver == "systemd"},
		CgroupDriver:   cgroup.Driver(cfg.CgroupDriver),
		MinOOMScoreAdj: minOOM,
	}, server.Deps{Images: images, Network: net, Log: log})
	if err != nil {
		return err
	}
	return listenAndServe(ctx, cfg.CRISocket, svc, log)
}

func listenAndServe(ctx context.Context, socket string, svc *server.Service, log *slog.Logger) error {
	if err := os.MkdirAll(filepath.Dir(socket), 0o711); err != nil {
		return err
	}
	if err := os.Remove(socket); err != nil && !os.IsNotExist(err) {
		return err
	}
	l, err := listenUnix(socket)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(server.Interceptor(log)), grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20))
	runtimeapi.RegisterRuntimeServiceServer(srv, svc)
	runtimeapi.RegisterImageServiceServer(srv, svc)
	server.RegisterAdmin(srv, svc)
	go func() {
		<-ctx.Done()
		srv.GracefulStop()
	}()
	log.Info("berthd serving CRI", "socket", socket, "version", server.Version)
	return srv.Serve(l)
}

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
