package imagegc

import (
	"errors"
	"fmt"
	"time"
)

// Config is the image garbage collection policy, kubelet's
// --image-gc-high-threshold, --image-gc-low-threshold and
// --minimum-image-ttl-duration, plus the period of the passes.
type Config struct {
	// HighThresholdPercent is the usage of the image filesystem at or
	// above which a pass removes images; 100 disables collection.
	HighThresholdPercent int
	// LowThresholdPercent is the usage a pass tries to bring it down to.
	LowThresholdPercent int
	// MinAge is how long an image is kept after it was first seen, so
	// that an image pulled for a container about to be created stays.
	MinAge time.Duration
	// Period is the time between passes of Run.
	Period time.Duration
}

// DefaultConfig returns kubelet's defaults: 85 %, 80 %, 2 minutes, and a
// pass every 5 minutes.
func DefaultConfig() Config {
	return Config{HighThresholdPercent: 85, LowThresholdPercent: 80, MinAge: 2 * time.Minute, Period: 5 * time.Minute}
}

// Disabled reports whether the policy never removes anything.
func (c Config) Disabled() bool { return c.HighThresholdPercent >= 100 }

// Validate reports what is wrong with c (every problem, joined) and what
// is legal but probably unintended. It changes nothing.
func (c Config) Validate() (warnings []string, err error) {
	var errs []error
	if c.HighThresholdPercent < 0 || c.HighThresholdPercent > 100 {
		errs = append(errs, fmt.Errorf("imagegc: HighThresholdPercent %d must be between 0 and 100", c.HighThresholdPercent))
	}
	if c.LowThresholdPercent < 0 || c.LowThresholdPercent > 100 {
		errs = append(errs, fmt.Errorf("imagegc: LowThresholdPercent %d must be between 0 and 100", c.LowThresholdPercent))
	}
	if c.LowThresholdPercent >= c.HighThresholdPercent {
		errs = append(errs, fmt.Errorf("imagegc: LowThresholdPercent %d must be below HighThresholdPercent %d", c.LowThresholdPercent, c.HighThresholdPercent))
	}
	if c.MinAge < 0 {
		errs = append(errs, fmt.Errorf("imagegc: MinAge %s must not be negative", c.MinAge))
	}
	if c.Period <= 0 {
		errs = append(errs, fmt.Errorf("imagegc: Period %s must be positive", c.Period))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.Disabled() {
		warnings = append(warnings, "imagegc: HighThresholdPercent is 100: image garbage collection is disabled")
	}
	if c.MinAge == 0 {
		warnings = append(warnings, "imagegc: MinAge is 0: an image may be removed between its pull and the creation of the container that needs it")
	}
	if c.Period < 10*time.Second {
		warnings = append(warnings, fmt.Sprintf("imagegc: Period %s is short: every pass lists all images and containers", c.Period))
	}
	return warnings, nil
}
