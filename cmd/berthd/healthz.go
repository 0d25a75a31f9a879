package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-project/berth/pkg/config"
)

// listenHealthz listens where /healthz is served, as kubelet's
// healthzBindAddress:healthzPort; nil for port 0.
func listenHealthz(cfg config.Config) (net.Listener, error) {
	if cfg.HealthzPort == 0 {
		return nil, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(cfg.HealthzBindAddress, strconv.Itoa(cfg.HealthzPort)))
	if err != nil {
		return nil, fmt.Errorf("healthz (--healthz-port 0 serves none): %w", err)
	}
	return l, nil
}

// serveHealthz answers /healthz with "ok" while alive (the watchdog's
// check: the CRI answers and the agent is not wedged), else 500 and why.
func serveHealthz(ctx context.Context, l net.Listener, alive func(context.Context) error, log *slog.Logger) {
	mux := http.NewServeMux()
	check := func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := alive(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	}
	mux.HandleFunc("GET /healthz", check)
	mux.HandleFunc("GET /healthz/syncloop", check)
	mux.HandleFunc("GET /healthz/ping", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("healthz serving", "address", l.Addr().String())
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		log.Error("healthz stopped", "err", err)
	}
}
