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
// the given step starts.
func backoffDelay(step int) time.Duration {
	if step <= 1 {
		return 0
	}
	d := backoffBase
	for i := 2; i < step && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}
