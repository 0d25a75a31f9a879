package shim

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestAliveTracksTheProcessNotThePid(t *testing.T) {
	start, err := processStartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !(Process{Pid: os.Getpid(), StartTime: start}).Alive() {
		t.Error("this process is not alive")
	}
	if (Process{Pid: os.Getpid(), StartTime: start + 1}).Alive() {
		t.Error("a reused pid counts as the same process")
	}
	// A child that exited but was not reaped yet is a zombie: dead.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	zstart, err := processStartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	p := Process{Pid: cmd.Process.Pid, StartTime: zstart}
	deadline := time.Now().Add(10 * time.Second)
	for p.Alive() {
		fields, err := procStat(p.Pid)
		if err != nil || fields[0] == "Z" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child never exited")
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
	if p.Alive() {
		t.Error("a zombie counts as alive")
	}
}
