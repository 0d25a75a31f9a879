package shim

import (
	"context"
	"fmt"
	"sync"

	systemddbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

// A shim started by berthd is in berthd's cgroup: under systemd, the
// berth.service unit's. KillMode=process spares it when the service
// stops, but `systemctl kill berth` signals every process of the unit,
// and a killed shim takes its pod down. So where systemd runs, each shim
// moves at once into a scope of its own (berth-shim-<id>.scope in
// system.slice), as CRI-O moves its conmon; systemd drops the scope once
// the shim has exited.

var (
	busOnce sync.Once
	bus     *systemddbus.Conn
	busErr  error
)

// moveToScope puts pid into a new transient scope unit.
func moveToScope(ctx context.Context, unit string, pid int) error {
	busOnce.Do(func() { bus, busErr = systemddbus.NewSystemConnectionContext(context.Background()) })
	if busErr != nil {
		return fmt.Errorf("systemd D-Bus: %w", busErr)
	}
	done := make(chan string, 1)
	props := []systemddbus.Property{
		systemddbus.PropSlice("system.slice"),
		systemddbus.PropPids(uint32(pid)),
		systemddbus.PropDescription("berth shim"),
		{Name: "CollectMode", Value: godbus.MakeVariant("inactive-or-failed")},
	}
	if _, err := bus.StartTransientUnitContext(ctx, unit, "fail", props, done); err != nil {
		return fmt.Errorf("scope %s: %w", unit, err)
	}
	select {
	case res := <-done:
		if res != "done" {
			return fmt.Errorf("scope %s: systemd says %s", unit, res)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("scope %s: %w", unit, ctx.Err())
	}
}
