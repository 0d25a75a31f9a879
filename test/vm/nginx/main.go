// Command nginx stands in for nginx in the VM lane's copy of critest's
// nginx image, doing what critest's namespace specs look for: a process
// named nginx (pidof finds it), whose command line says "master process"
// as nginx's master does, with its PID in /var/run/nginx.pid, running
// until it is told to stop.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

const title = "nginx: master process nginx -g daemon off;"

func main() {
	if os.Args[0] != title {
		// Executed again under the master's title; the kernel names the
		// process after the file, so it stays "nginx".
		exe, err := os.Executable()
		if err == nil {
			err = syscall.Exec(exe, []string{title}, os.Environ())
		}
		fmt.Fprintln(os.Stderr, "nginx:", err)
		os.Exit(1)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGINT)
	if err := os.MkdirAll("/var/run", 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "nginx:", err)
		os.Exit(1)
	}
	if err := os.WriteFile("/var/run/nginx.pid", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "nginx:", err)
		os.Exit(1)
	}
	<-stop
	os.Remove("/var/run/nginx.pid")
}
