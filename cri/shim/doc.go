// Package shim is berth-shim, the per-pod process that owns the pod's
// containers while they run, and the client berthd uses to talk to it.
//
// The shim exists so that containers outlive berthd. It is the parent of
// every container of its pod (a child subreaper: runc's detached init
// processes are reparented to it), so it alone can collect their exit
// status; it holds their stdout/stderr pipes and writes them to the CRI
// log file; and it records each exit (code, time, OOM kill) in a file
// before anybody asks. berthd can therefore be killed, restarted or
// upgraded at any time: on its return it reads the exit files and asks
// the still-running shims for the rest.
//
// Everything else (kill, delete, exec without a terminal, state) berthd
// does with runc directly; the shim only does what needs the parent of the
// container or the holder of its stdio: it runs the container (`runc run
// --detach`) and waits for it; it fans the container's live output out to
// attached clients next to the log file and feeds their input to the
// container's stdin (a pipe kept for containers created with stdin) or
// terminal (a tty container's pty master, received from runc through a
// console socket); it reopens the log file after rotation; and it runs
// execs that need a terminal, because runc only gives a terminal to a
// process it detaches, and only the subreaper can collect that process's
// exit.
//
// Protocol: one JSON request line and one JSON response line per
// connection on a unix socket. Attach and exec sessions then carry frames
// both ways (protocol.go). It is deliberately tiny: the shim runs once
// per pod and its memory is multiplied by the number of pods; nothing
// needed only by attach or exec costs memory until a session starts.
package shim
