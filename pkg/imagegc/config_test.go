package imagegc

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValidWithoutWarnings(t *testing.T) {
	c := DefaultConfig()
	if c != (Config{HighThresholdPercent: 85, LowThresholdPercent: 80, MinAge: 2 * time.Minute, Period: 5 * time.Minute}) {
		t.Errorf("DefaultConfig = %+v", c)
	}
	if w, err := c.Validate(); err != nil || len(w) != 0 {
		t.Errorf("Validate(default) = %v, %v", w, err)
	}
}

func TestValidate(t *testing.T) {
	ok := DefaultConfig()
	with := func(f func(*Config)) Config { c := ok; f(&c); return c }
	tests := []struct {
		name    string
		cfg     Config
		errs    []string // substrings of the error, all of them
		warning string   // substring of one warning
	}{
		{name: "high above 100", cfg: with(func(c *Config) { c.HighThresholdPercent = 101 }), errs: []string{"HighThresholdPercent 101 must be between 0 and 100"}},
		{name: "high negative", cfg: with(func(c *Config) { c.HighThresholdPercent = -1 }), errs: []string{"HighThresholdPercent -1", "LowThresholdPercent 80 must be below"}},
		{name: "low negative", cfg: with(func(c *Config) { c.LowThresholdPercent = -5 }), errs: []string{"LowThresholdPercent -5 must be between 0 and 100"}},
		{name: "low above 100", cfg: with(func(c *Config) { c.LowThresholdPercent = 101; c.HighThresholdPercent = 100 }), errs: []string{"LowThresholdPercent 101 must be between"}},
		{name: "low equals high", cfg: with(func(c *Config) { c.LowThresholdPercent = 85 }), errs: []string{"LowThresholdPercent 85 must be below HighThresholdPercent 85"}},
		{name: "low above high", cfg: with(func(c *Config) { c.LowThresholdPercent = 90 }), errs: []string{"LowThresholdPercent 90 must be below"}},
		{name: "negative min age", cfg: with(func(c *Config) { c.MinAge = -time.Second }), errs: []string{"MinAge -1s"}},
		{name: "zero period", cfg: with(func(c *Config) { c.Period = 0 }), errs: []string{"Period 0s must be positive"}},
		{name: "zero config: every problem", cfg: Config{}, errs: []string{"LowThresholdPercent 0 must be below HighThresholdPercent 0", "Period 0s"}},
		{name: "high 100 disables", cfg: with(func(c *Config) { c.HighThresholdPercent = 100 }), warning: "disabled"},
		{name: "min age 0", cfg: with(func(c *Config) { c.MinAge = 0 }), warning: "MinAge is 0"},
		{name: "short period", cfg: with(func(c *Config) { c.Period = time.Second }), warning: "Period 1s is short"},
		{name: "low 0 high 1", cfg: with(func(c *Config) { c.LowThresholdPercent, c.HighThresholdPercent = 0, 1 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.cfg
			w, err := tt.cfg.Validate()
			if tt.cfg != before {
				t.Errorf("Validate changed the config")
			}
			if len(tt.errs) == 0 && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			for _, e := range tt.errs {
				if err == nil || !strings.Contains(err.Error(), e) {
					t.Errorf("Validate error %v, want it to say %q", err, e)
				}
			}
			if tt.warning != "" && !strings.Contains(strings.Join(w, "\n"), tt.warning) {
				t.Errorf("warnings %q, want one saying %q", w, tt.warning)
			}
			if tt.warning == "" && len(w) != 0 {
				t.Errorf("unexpected warnings %q", w)
			}
		})
	}
}
