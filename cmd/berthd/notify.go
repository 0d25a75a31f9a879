package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notify tells systemd (a Type=notify unit) how berthd is doing. Outside
// systemd (no NOTIFY_SOCKET) it does nothing.
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("systemd notify", "state", state, "err", err)
	}
}

// watchdog pings systemd at half the unit's WatchdogSec for as long as
// alive says berthd works; a wedged daemon misses its pings, and systemd
// restarts it. Without WatchdogSec it returns at once.
func watchdog(ctx context.Context, alive func(context.Context) error, log *slog.Logger) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog", "err", err)
	}
	if interval <= 0 {
		return
	}
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		check, cancel := context.WithTimeout(ctx, interval/2)
		err := alive(check)
		cancel()
		if err != nil {
			log.Error("systemd watchdog: not pinging, berthd is stuck", "err", err)
			continue
		}
		notify(log, daemon.SdNotifyWatchdog)
	}
}
