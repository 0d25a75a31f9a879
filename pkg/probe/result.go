package probe

// Kind is one of a container's three probes.
type Kind int8

const (
	Startup Kind = iota
	Liveness
	Readiness
)

func (k Kind) String() string {
	switch k {
	case Startup:
		return "Startup"
	case Liveness:
		return "Liveness"
	case Readiness:
		return "Readiness"
	}
	return "Unknown"
}

// Result is a probe's verdict once its thresholds are applied.
type Result int8

const (
	// Unknown: not decided yet (a startup probe before its first
	// success, any probe of a container the prober does not know).
	Unknown Result = iota
	Success
	Failure
)

func (r Result) String() string {
	switch r {
	case Success:
		return "success"
	case Failure:
		return "failure"
	}
	return "unknown"
}

// initial is a probe's result before it first decides, as kubelet has it:
// a container is live until proven otherwise, not ready until proven so.
func initial(k Kind) Result {
	switch k {
	case Liveness:
		return Success
	case Readiness:
		return Failure
	}
	return Unknown
}
