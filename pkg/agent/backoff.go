package agent

import "time"

// Restart back-off, as kubelet's: the first restart after a quick failure
// is immediate, then 10 s doubling up to 5 min; a container that ran for 10
// minutes starts a new series.
const (
	backoffBase  = 10 * time.Second
	backoffMax   = 300 * time.Second
	backoffReset = 10 * time.Minute
)

// nextBackoffStep is the number of consecutive quick failures once a
// container whose attempt carried step has exited after running ran.
func nextBackoffStep(step int, ran time.Duration) int {
	if ran >= backoffReset {
		return 1
	}
	return step + 1
}

// backoffDelay is how long to wait after the exit before the attempt with
// the given step starts, at most limit (kubelet's
// maxContainerRestartPeriod; 0 means backoffMax), which also lowers the
// first wait when it is shorter than backoffBase.
func backoffDelay(step int, limit time.Duration) time.Duration {
	if limit <= 0 {
		limit = backoffMax
	}
	if step <= 1 {
		return 0
	}
	d := min(backoffBase, limit)
	for i := 2; i < step && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
