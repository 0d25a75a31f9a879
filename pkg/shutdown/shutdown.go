// Package shutdown stops the node's pods when the host shuts down, as
// kubelet's graceful node shutdown does: berthd holds a systemd-logind
// "delay" inhibitor lock for shutdownGracePeriod; when logind announces
// the shutdown (PrepareForShutdown), the regular pods are stopped within
// the grace period less shutdownGracePeriodCriticalPods, then the
// critical ones within the rest, and the lock is released so that the
// shutdown goes on. A restart of berthd is no shutdown and stops nothing.
package shutdown

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/login1"
	"github.com/godbus/dbus/v5"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Pods lists the node's pods and says when they change (the agent's
// status cache).
type Pods interface {
	Pods() []v1.Pod
	Changed() (<-chan struct{}, uint64)
}

// Terminator stops a pod for the shutdown (the agent).
type Terminator interface {
	Terminate(namespace, name string, uid types.UID, message string, grace int64) error
}

// Config is what the manager needs.
type Config struct {
	GracePeriod, CriticalGracePeriod time.Duration
	Pods                             Pods
	Terminator                       Terminator
	// LogindConfDir gets the drop-in that raises logind's
	// InhibitDelayMaxSec to the grace period when it is lower.
	LogindConfDir string // default /etc/systemd/logind.conf.d
	Log           *slog.Logger
}

// Message is what a pod stopped for a shutdown says, kubelet's words.
const Message = "Pod was terminated in response to imminent node shutdown."

// Run holds the inhibitor lock and handles shutdowns until ctx ends. It
// returns an error at once if logind cannot be reached (no systemd):
// the caller reports it, and berthd runs on without graceful shutdown.
func Run(ctx context.Context, cfg Config) error {
	if cfg.LogindConfDir == "" {
		cfg.LogindConfDir = "/etc/systemd/logind.conf.d"
	}
	log := cfg.Log
	conn, err := login1.New()
	if err != nil {
		return fmt.Errorf("graceful node shutdown: systemd-logind: %w", err)
	}
	defer conn.Close()
	if err := ensureInhibitDelay(cfg, log); err != nil {
		return err
	}
	signals := conn.Subscribe("PrepareForShutdown")
	lock, err := conn.Inhibit("shutdown", "berth", "berth stops the node's pods before the node shuts down", "delay")
	if err != nil {
		return fmt.Errorf("graceful node shutdown: inhibitor lock: %w", err)
	}
	log.Info("graceful node shutdown: holding a delay inhibitor lock", "shutdownGracePeriod", cfg.GracePeriod,
		"shutdownGracePeriodCriticalPods", cfg.CriticalGracePeriod)
	shuttingDown := false
	for {
		select {
		case <-ctx.Done():
			if lock != nil {
				lock.Close()
			}
			return nil
		case sig, ok := <-signals:
			if !ok && shuttingDown {
				return nil // D-Bus goes down with the node
			}
			if !ok {
				return errors.New("graceful node shutdown: the D-Bus connection to logind closed")
			}
			if sig.Name != "org.freedesktop.login1.Manager.PrepareForShutdown" || len(sig.Body) != 1 {
				continue
			}
			if starting, _ := sig.Body[0].(bool); !starting {
				// The shutdown was cancelled: hold a lock again.
				shuttingDown = false
				if lock == nil {
					if lock, err = conn.Inhibit("shutdown", "berth", "berth stops the node's pods before the node shuts down", "delay"); err != nil {
						log.Warn("graceful node shutdown: inhibitor lock after a cancelled shutdown", "err", err)
					}
				}
				continue
			}
			shuttingDown = true
			log.Warn("node shutting down: stopping its pods", "gracePeriod", cfg.GracePeriod)
			stopPods(ctx, cfg, log)
			if lock != nil {
				lock.Close()
				lock = nil
			}
			log.Warn("node shutting down: pods stopped; the shutdown goes on")
		}
	}
}

// stopPods stops the pods stage by stage, each stage until its pods have
// stopped or its budget is spent.
func stopPods(ctx context.Context, cfg Config, log *slog.Logger) {
	for i, st := range stages(cfg.Pods.Pods(), cfg.GracePeriod, cfg.CriticalGracePeriod) {
		if len(st.pods) == 0 {
			continue
		}
		kind := "regular"
		if i == 1 {
			kind = "critical"
		}
		log.Info("node shutting down: stopping pods", "pods", len(st.pods), "kind", kind, "budget", st.budget)
		uids := map[types.UID]bool{}
		for _, p := range st.pods {
			if err := cfg.Terminator.Terminate(p.Namespace, p.Name, p.UID, Message, podGrace(p, st.budget)); err != nil {
				log.Warn("node shutting down: stop pod", "pod", p.Namespace+"/"+p.Name, "err", err)
				continue
			}
			uids[p.UID] = true
		}
		deadline := time.NewTimer(st.budget)
	wait:
		for {
			changed, _ := cfg.Pods.Changed()
			if !running(cfg.Pods, uids) {
				break
			}
			select {
			case <-changed:
			case <-deadline.C:
				log.Warn("node shutting down: pods still running at the end of their budget", "kind", kind)
				break wait
			case <-ctx.Done():
				break wait
			}
		}
		deadline.Stop()
	}
}

// running: some of the pods still has a container running.
func running(pods Pods, uids map[types.UID]bool) bool {
	for _, p := range pods.Pods() {
		if !uids[p.UID] {
			continue
		}
		for _, c := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			if c.State.Running != nil {
				return true
			}
		}
	}
	return false
}

// ensureInhibitDelay raises logind's InhibitDelayMaxSec to the grace
// period if it is lower, with a drop-in and a reload of logind, as
// kubelet does; logind would otherwise cut the delay short.
func ensureInhibitDelay(cfg Config, log *slog.Logger) error {
	current, err := inhibitDelayMax()
	if err != nil {
		return fmt.Errorf("graceful node shutdown: logind's InhibitDelayMaxUSec: %w", err)
	}
	if current >= cfg.GracePeriod {
		return nil
	}
	file := filepath.Join(cfg.LogindConfDir, "99-berth.conf")
	if err := os.MkdirAll(cfg.LogindConfDir, 0o755); err != nil {
		return fmt.Errorf("graceful node shutdown: %w", err)
	}
	conf := "# Written by berthd: logind may delay a shutdown for berth's shutdownGracePeriod.\n[Login]\nInhibitDelayMaxSec=" +
		strconv.Itoa(int(cfg.GracePeriod.Round(time.Second)/time.Second)) + "\n"
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("graceful node shutdown: %w", err)
	}
	if err := reloadLogind(); err != nil {
		return fmt.Errorf("graceful node shutdown: reload logind: %w", err)
	}
	// logind rereads its configuration on SIGHUP, asynchronously.
	for range 50 {
		if current, err = inhibitDelayMax(); err == nil && current >= cfg.GracePeriod {
			log.Info("graceful node shutdown: raised logind's InhibitDelayMaxSec", "file", file, "seconds", cfg.GracePeriod.Seconds())
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("graceful node shutdown: logind's InhibitDelayMaxSec is %s after %s was written: less than shutdownGracePeriod %s",
		current, file, cfg.GracePeriod)
}

func inhibitDelayMax() (time.Duration, error) {
	bus, err := dbus.SystemBus()
	if err != nil {
		return 0, err
	}
	v, err := bus.Object("org.freedesktop.login1", "/org/freedesktop/login1").GetProperty("org.freedesktop.login1.Manager.InhibitDelayMaxUSec")
	if err != nil {
		return 0, err
	}
	us, ok := v.Value().(uint64)
	if !ok {
		return 0, fmt.Errorf("unexpected value %v", v.Value())
	}
	return time.Duration(us) * time.Microsecond, nil
}

// reloadLogind sends logind SIGHUP through systemd, as `systemctl kill
// -s HUP systemd-logind` does.
func reloadLogind() error {
	bus, err := dbus.SystemBus()
	if err != nil {
		return err
	}
	return bus.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1").
		Call("org.freedesktop.systemd1.Manager.KillUnit", 0, "systemd-logind.service", "main", int32(syscall.SIGHUP)).Err
}
