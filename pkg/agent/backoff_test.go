package agent

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	// Quick failures: restart at once, then 10 s doubling to 300 s.
	want := []time.Duration{0, 10, 20, 40, 80, 160, 300, 300}
	step := 0
	for i, w := range want {
		step = nextBackoffStep(step, time.Second)
		if got := backoffDelay(step, 0); got != w*time.Second {
			t.Errorf("failure %d: delay %v, want %v", i+1, got, w*time.Second)
		}
	}
	// Ten minutes of running start a new series.
	if step = nextBackoffStep(step, backoffReset); backoffDelay(step, 0) != 0 {
		t.Errorf("after a long run: step %d delay %v, want an immediate restart", step, backoffDelay(step, 0))
	}
	if got := backoffDelay(nextBackoffStep(step, time.Second), 0); got != backoffBase {
		t.Errorf("second quick failure of the new series: %v, want %v", got, backoffBase)
	}
}

func TestBackoffLimit(t *testing.T) {
	// kubelet's crashLoopBackOff.maxContainerRestartPeriod caps the series,
	// the first wait included.
	for _, c := range []struct {
		limit time.Duration
		want  []time.Duration
	}{
		{30 * time.Second, []time.Duration{0, 10, 20, 30, 30}},
		{4 * time.Second, []time.Duration{0, 4, 4, 4}},
	} {
		step := 0
		for i, w := range c.want {
			step = nextBackoffStep(step, time.Second)
			if got := backoffDelay(step, c.limit); got != w*time.Second {
				t.Errorf("limit %v, failure %d: delay %v, want %v", c.limit, i+1, got, w*time.Second)
			}
		}
	}
}
