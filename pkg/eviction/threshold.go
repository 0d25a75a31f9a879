package eviction

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Signal names what a threshold watches, in kubelet's spelling.
type Signal string

// The signals berth observes.
const (
	MemoryAvailable   Signal = "memory.available"
	NodeFsAvailable   Signal = "nodefs.available"
	NodeFsInodesFree  Signal = "nodefs.inodesFree"
	ImageFsAvailable  Signal = "imagefs.available"
	ImageFsInodesFree Signal = "imagefs.inodesFree"
)

var observed = []Signal{MemoryAvailable, NodeFsAvailable, NodeFsInodesFree, ImageFsAvailable, ImageFsInodesFree}

// kubelet's other signals: accepted, reported as not observed.
var notObserved = []Signal{"pid.available", "allocatableMemory.available", "containerfs.available", "containerfs.inodesFree"}

// resource is what a signal measures, as the eviction message and the
// Node's conditions name it.
func (s Signal) resource() string {
	switch s {
	case MemoryAvailable:
		return "memory"
	case NodeFsInodesFree, ImageFsInodesFree:
		return "inodes"
	}
	return "ephemeral-storage"
}

// disk: a filesystem signal (DiskPressure), as opposed to memory.
func (s Signal) disk() bool { return s != MemoryAvailable }

// Threshold is one eviction threshold: the signal is met when what is
// available falls below Quantity (bytes or inodes), or below Percent of
// the capacity when Quantity is 0.
type Threshold struct {
	Signal   Signal
	Quantity int64
	Percent  float64
	// Hard thresholds act at once; soft ones once met for GracePeriod.
	Hard        bool
	GracePeriod time.Duration
	// MinReclaim is how far above the threshold an eviction brings the
	// signal before it counts as relieved (evictionMinimumReclaim).
	MinReclaimQuantity int64
	MinReclaimPercent  float64
}

// Limit is the threshold in the signal's units for a capacity.
func (t Threshold) Limit(capacity int64) int64 {
	if t.Quantity > 0 {
		return t.Quantity
	}
	return int64(t.Percent / 100 * float64(capacity))
}

// reclaim is the extra to free beyond the threshold.
func (t Threshold) reclaim(capacity int64) int64 {
	if t.MinReclaimQuantity > 0 {
		return t.MinReclaimQuantity
	}
	return int64(t.MinReclaimPercent / 100 * float64(capacity))
}

// String is the threshold's value as configured: "100Mi", "10%".
func (t Threshold) String() string {
	if t.Quantity > 0 {
		if t.Signal.resource() == "inodes" {
			return strconv.FormatInt(t.Quantity, 10)
		}
		return resource.NewQuantity(t.Quantity, resource.BinarySI).String()
	}
	return strconv.FormatFloat(t.Percent, 'f', -1, 64) + "%"
}

// DefaultHard are kubelet's evictionHard defaults.
func DefaultHard() map[string]string {
	return map[string]string{
		string(MemoryAvailable):  "100Mi",
		string(NodeFsAvailable):  "10%",
		string(NodeFsInodesFree): "5%",
		string(ImageFsAvailable): "15%",
	}
}

// Settings are the thresholds as configured, in kubelet's terms: maps of
// signal to value ("100Mi", "10%") and of signal to grace period ("1m30s").
type Settings struct {
	Hard, Soft, SoftGracePeriod, MinimumReclaim map[string]string
	// MaxPodGracePeriod caps a pod's grace period in a soft eviction
	// (evictionMaxPodGracePeriod, seconds).
	MaxPodGracePeriod int64
	// PressureTransitionPeriod is how long a pressure condition stays
	// after its last threshold stopped being met (default 5 minutes).
	PressureTransitionPeriod time.Duration
}

// Parse turns settings into thresholds. Errors name the setting and the
// signal; warnings name signals berth knows but does not observe.
func (s Settings) Parse() (thresholds []Threshold, warnings []string, err error) {
	var errs []error
	parse := func(field string, m map[string]string, hard bool) {
		for _, name := range slices.Sorted(maps.Keys(m)) {
			sig, w, err := signal(name)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", field, err))
				continue
			}
			if w != "" {
				warnings = append(warnings, field+": "+w)
				continue
			}
			t, err := value(sig, m[name])
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", field, name, err))
				continue
			}
			if t == nil {
				continue // 0 or 100 %: disabled
			}
			t.Hard = hard
			if !hard {
				g, ok := s.SoftGracePeriod[name]
				if !ok {
					errs = append(errs, fmt.Errorf("%s: %s: a soft threshold needs its evictionSoftGracePeriod", field, name))
					continue
				}
				d, err := time.ParseDuration(g)
				if err != nil || d < 0 {
					errs = append(errs, fmt.Errorf("evictionSoftGracePeriod: %s: %q is not a duration of zero or more", name, g))
					continue
				}
				t.GracePeriod = d
			}
			if r, ok := s.MinimumReclaim[name]; ok {
				q, err := value(sig, r)
				if err != nil {
					errs = append(errs, fmt.Errorf("evictionMinimumReclaim: %s: %w", name, err))
					continue
				}
				if q != nil {
					t.MinReclaimQuantity, t.MinReclaimPercent = q.Quantity, q.Percent
				}
			}
			thresholds = append(thresholds, *t)
		}
	}
	parse("evictionHard", s.Hard, true)
	parse("evictionSoft", s.Soft, false)
	for _, name := range slices.Sorted(maps.Keys(s.SoftGracePeriod)) {
		if _, ok := s.Soft[name]; !ok {
			errs = append(errs, fmt.Errorf("evictionSoftGracePeriod: %s: no evictionSoft threshold for it", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.MinimumReclaim)) {
		if _, err := value(Signal(name), s.MinimumReclaim[name]); err != nil {
			continue // reported above when the signal has a threshold
		}
		if _, hard := s.Hard[name]; !hard {
			if _, soft := s.Soft[name]; !soft {
				errs = append(errs, fmt.Errorf("evictionMinimumReclaim: %s: no threshold for it", name))
			}
		}
	}
	if s.MaxPodGracePeriod < 0 {
		errs = append(errs, fmt.Errorf("evictionMaxPodGracePeriod: %d must not be negative", s.MaxPodGracePeriod))
	}
	if s.PressureTransitionPeriod < 0 {
		errs = append(errs, fmt.Errorf("evictionPressureTransitionPeriod: %s must not be negative", s.PressureTransitionPeriod))
	}
	return thresholds, warnings, errors.Join(errs...)
}

// CheckValues checks one map of thresholds (or, with durations, of grace
// periods) on its own: every signal known, every value well formed.
func CheckValues(m map[string]string, durations bool) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(m)) {
		sig, _, err := signal(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if durations {
			if d, err := time.ParseDuration(m[name]); err != nil || d < 0 {
				errs = append(errs, fmt.Errorf("%s: %q is not a duration of zero or more", name, m[name]))
			}
			continue
		}
		if _, err := value(sig, m[name]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func signal(name string) (Signal, string, error) {
	s := Signal(name)
	switch {
	case slices.Contains(observed, s):
		return s, "", nil
	case slices.Contains(notObserved, s):
		return s, fmt.Sprintf("signal %s is not observed by berth: its threshold is ignored", name), nil
	}
	return "", "", fmt.Errorf("unknown signal %q (berth observes %s)", name, joinSignals(observed))
}

func joinSignals(ss []Signal) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, ", ")
}

// value parses "100Mi", "1000" or "10%"; nil when it disables the
// signal (0, 0 % or 100 %, as kubelet has it).
func value(s Signal, v string) (*Threshold, error) {
	v = strings.TrimSpace(v)
	if p, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f < 0 || f > 100 {
			return nil, fmt.Errorf("%q is not a percentage from 0%% to 100%%", v)
		}
		if f == 0 || f == 100 {
			return nil, nil
		}
		return &Threshold{Signal: s, Percent: f}, nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil || q.Sign() < 0 {
		return nil, fmt.Errorf("%q is not a quantity (such as 100Mi) or a percentage (such as 10%%)", v)
	}
	if q.IsZero() {
		return nil, nil
	}
	return &Threshold{Signal: s, Quantity: q.Value()}, nil
}

// ParseList reads kubelet's flag syntax, "memory.available<100Mi,nodefs.available<10%",
// or with sep '=' its grace periods, "memory.available=1m30s".
func ParseList(s string, sep byte) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, string(sep))
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%q: want signal%cvalue", kv, sep)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("signal %s given twice", k)
		}
		out[k] = v
	}
	return out, nil
}
