// Command berth-shim is the per-pod process that creates the pod's
// containers through runc, holds their stdio and records their exits.
// berthd starts it; it is not meant to be run by hand.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"

	"github.com/berth-project/berth/cri/runc"
	"github.com/berth-project/berth/cri/shim"
)

func main() {
	socket := flag.String("socket", "", "unix socket to serve on")
	runcBin := flag.String("runc", "runc", "runc binary")
	runcRoot := flag.String("runc-root", "/run/berth/runc", "runc state root")
	systemd := flag.Bool("systemd-cgroup", false, "use runc's systemd cgroup driver")
	flag.Parse()

	// The shim is multiplied by the number of pods: trade a little CPU for
	// a small, steady heap.
	debug.SetGCPercent(25)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("shim", *socket)
	ready := os.NewFile(3, "ready")
	if err := run(*socket, *runcBin, *runcRoot, *systemd, ready, log); err != nil {
		log.Error("shim failed", "error", err)
		if ready != nil {
			fmt.Fprintln(ready, err)
		}
		os.Exit(1)
	}
}

func run(socket, runcBin, runcRoot string, systemd bool, ready *os.File, log *slog.Logger) error {
	if socket == "" {
		return fmt.Errorf("--socket is required")
	}
	os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		return err
	}
	srv := shim.NewServer(&runc.Runc{Binary: runcBin, Root: runcRoot, SystemdCgroup: systemd}, log)
	if ready != nil {
		fmt.Fprintln(ready, "ok")
		ready.Close()
	}
	log.Info("shim serving")
	err = srv.Serve(l)
	os.Remove(socket)
	return err
}
