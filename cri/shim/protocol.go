package shim

import "time"

// Operations understood by the shim.
const (
	OpRun      = "run"      // create and start a container with the shim as parent
	OpWait     = "wait"     // block until the container has exited
	OpForget   = "forget"   // drop an exited container's record
	OpShutdown = "shutdown" // exit the shim
)

// Request is one call to the shim.
type Request struct {
	Op      string `json:"op"`
	ID      string `json:"id,omitempty"`
	Bundle  string `json:"bundle,omitempty"`
	LogPath string `json:"logPath,omitempty"` // CRI log file; "" discards output
	// ExitFile is where the shim records the exit, atomically, as an Exit.
	ExitFile string `json:"exitFile,omitempty"`
	// OOMFiles are cgroup files with an "oom_kill N" line (memory.oom_control
	// on cgroup v1, memory.events on v2), read when the container exits.
	OOMFiles []string `json:"oomFiles,omitempty"`
}

// Response answers a Request. Error is empty on success.
type Response struct {
	Error string `json:"error,omitempty"`
	Pid   int    `json:"pid,omitempty"`
	Exit  *Exit  `json:"exit,omitempty"`
}

// Exit is how a container's init process ended. It is also the format of
// the exit file.
type Exit struct {
	Code       int       `json:"code"`
	Signal     int       `json:"signal,omitempty"`
	FinishedAt time.Time `json:"finishedAt"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
}
