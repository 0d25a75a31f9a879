package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/pkg/agent"
	"github.com/berth-project/berth/pkg/api"
	"github.com/berth-project/berth/pkg/config"
	"github.com/berth-project/berth/pkg/manifest"
	"github.com/berth-project/berth/pkg/source"
)

// startAgent runs the static pod agent against the CRI endpoint (berthd's
// own socket unless another runtime is named) and serves its local API.
func startAgent(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	endpoint := cfg.ContainerRuntimeEndpoint
	if endpoint == "" {
		endpoint = "unix://" + cfg.CRISocket
	}
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		return fmt.Errorf("agent: CRI endpoint %s: %w", endpoint, err)
	}
	nodeName := strings.ToLower(cfg.NodeName)
	if nodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		nodeName = strings.ToLower(h)
	}
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	mgr := agent.New(agent.Config{
		NodeName:       nodeName,
		LogDir:         cfg.PodLogsDir,
		PodDir:         filepath.Join(cfg.Root, "pods"),
		CgroupRoot:     cfg.CgroupRoot,
		SystemdCgroups: cfg.CgroupDriver == "systemd",
		Runtime:        rt,
		Images:         runtimeapi.NewImageServiceClient(conn),
		Log:            log,
	})
	apiSrv := api.New(mgr.Status(), mgr)
	probes := prometheus.NewRegistry()
	probes.MustRegister(mgr.ProbeCollector())
	apiSrv.Mount("GET /metrics/probes", promhttp.HandlerFor(probes, promhttp.HandlerOpts{}))
	socket := cfg.APISocket
	if socket == "" {
		socket = filepath.Join(cfg.State, "api.sock")
	}
	l, err := listenSocket(socket)
	if err != nil {
		return fmt.Errorf("agent API: %w", err)
	}
	listeners := []net.Listener{l}
	if cfg.APIAddress != "" {
		tl, err := net.Listen("tcp", cfg.APIAddress)
		if err != nil {
			return fmt.Errorf("agent API: %w", err)
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
		dir := source.Dir{Path: cfg.StaticPodPath, NodeName: nodeName, Log: log}
		err := dir.Run(ctx, func(files []manifest.File) {
			apiSrv.SetManifests(files)
			if err := mgr.SetPods(ctx, podsOf(files)); err != nil {
				log.Warn("apply manifests", "err", err)
			}
		})
		if err != nil {
			log.Error("manifest source stopped", "err", err)
		}
	}()
	log.Info("agent running", "manifests", cfg.StaticPodPath, "node", nodeName, "runtime", endpoint, "api", socket)
	return nil
}

// podsOf is every pod the manifest files run (an invalid file may keep
// its last valid pods).
func podsOf(files []manifest.File) []*v1.Pod {
	var pods []*v1.Pod
	for _, f := range files {
		pods = append(pods, f.Pods...)
	}
	return pods
}
