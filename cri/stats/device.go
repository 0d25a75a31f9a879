package stats

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// deviceNameTTL is how long a block device's name is trusted: a device
// number is reused only when a device goes and another comes.
const deviceNameTTL = time.Minute

// deviceNames names block devices by number, as cAdvisor labels them
// ("/dev/vda"), from <sysRoot>/dev/block/<major>:<minor>, a link to the
// device's directory. Names are remembered: the same few devices appear
// in every cgroup's I/O. Safe for concurrent use.
type deviceNames struct {
	sysRoot string
	now     func() time.Time

	mu    sync.Mutex
	names map[[2]uint64]deviceName
}

type deviceName struct {
	name    string // "" when the device has none in sysfs
	expires time.Time
}

func newDeviceNames(sysRoot string, now func() time.Time) *deviceNames {
	return &deviceNames{sysRoot: sysRoot, now: now, names: map[[2]uint64]deviceName{}}
}

// name returns "/dev/<name>" for the device, or "" when sysfs does not
// know it.
func (d *deviceNames) name(major, minor uint64) string {
	k := [2]uint64{major, minor}
	now := d.now()
	d.mu.Lock()
	e, ok := d.names[k]
	d.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.name
	}
	e = deviceName{expires: now.Add(deviceNameTTL)}
	if target, err := os.Readlink(filepath.Join(d.sysRoot, "dev", "block", fmt.Sprintf("%d:%d", major, minor))); err == nil {
		e.name = "/dev/" + filepath.Base(target)
	}
	d.mu.Lock()
	d.names[k] = e
	d.mu.Unlock()
	return e.name
}
