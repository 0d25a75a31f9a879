package shim

import "time"

// Operations understood by the shim.
const (
	OpRun       = "run"        // create and start a container with the shim as parent
	OpWait      = "wait"       // block until the container has exited
	OpForget    = "forget"     // drop an exited container's record
	OpShutdown  = "shutdown"   // exit the shim
	OpAttach    = "attach"     // stream the container's live output and feed its stdin
	OpExec      = "exec"       // run a process with a terminal in the container and stream it
	OpReopenLog = "reopen-log" // reopen the container's log file after rotation
	OpLogStats  = "log-stats"  // how many of the container's log records were dropped
)

// Request is one call to the shim.
type Request struct {
	Op      string `json:"op"`
	ID      string `json:"id,omitempty"`
	Bundle  string `json:"bundle,omitempty"`
	LogPath string `json:"logPath,omitempty"` // CRI log file; "" discards output
	// LogMaxSize (bytes; 0: never) and LogMaxFiles (the live one
	// included) rotate the log file, as kubelet's containerLogMaxSize and
	// containerLogMaxFiles.
	LogMaxSize  int64 `json:"logMaxSize,omitempty"`
	LogMaxFiles int   `json:"logMaxFiles,omitempty"`
	// ExitFile is where the shim records the exit, atomically, as an Exit.
	ExitFile string `json:"exitFile,omitempty"`
	// OOMFiles are cgroup files with an "oom_kill N" line (memory.oom_control
	// on cgroup v1, memory.events on v2), read when the container exits.
	OOMFiles []string `json:"oomFiles,omitempty"`
	// Stdin: on run, give the container a stdin that attach sessions feed;
	// on attach, the session feeds it.
	Stdin bool `json:"stdin,omitempty"`
	// StdinOnce (run): close the container's stdin when the first attach
	// session that fed it ends.
	StdinOnce bool `json:"stdinOnce,omitempty"`
	// Tty (run): the bundle's process asks for a terminal; the shim holds
	// its master, logs what it prints as stdout and lets attach use it.
	Tty bool `json:"tty,omitempty"`
	// Process (exec): the process.json to run with `runc exec`; it must ask
	// for a terminal. Its directory also gets the pid file and runc's log.
	Process string `json:"process,omitempty"`
}

// Response answers a Request. Error is empty on success; Class, when set,
// says which errdefs class the error belongs to.
type Response struct {
	Error string `json:"error,omitempty"`
	Class string `json:"class,omitempty"`
	Pid   int    `json:"pid,omitempty"`
	Exit  *Exit  `json:"exit,omitempty"`
	// LogDropped (log-stats) counts the records that could not be
	// written (a full disk), since the container started.
	LogDropped uint64 `json:"logDropped,omitempty"`
}

// Exit is how a container's init process ended. It is also the format of
// the exit file.
type Exit struct {
	Code       int       `json:"code"`
	Signal     int       `json:"signal,omitempty"`
	FinishedAt time.Time `json:"finishedAt"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
}

// After a successful attach or exec response the connection carries
// frames both ways: one type byte, a 4-byte big-endian length, the payload.
const (
	frameStdin      = 'i' // client → shim: bytes for the process's stdin
	frameStdinClose = 'c' // client → shim: the client's stdin has ended
	frameResize     = 'r' // client → shim: terminal width, height (2 bytes each)
	frameStdout     = 'o' // shim → client
	frameStderr     = 'e' // shim → client
	// frameEnd (shim → client) ends a session whose output is complete;
	// for exec it carries the exit code (4 bytes). A connection that ends
	// without it was cut short.
	frameEnd = 'x'
)

// maxFrame bounds a frame's payload.
const maxFrame = 1 << 20
