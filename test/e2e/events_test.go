package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/testutil"
)

const (
	created = runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT
	started = runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT
	stopped = runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT
	deleted = runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT
)

// subscribe opens a GetContainerEvents stream and returns once berthd has
// subscribed it (the response header): no later event can be missed.
func subscribe(t *testing.T, rt runtimeapi.RuntimeServiceClient) runtimeapi.RuntimeService_GetContainerEventsClient {
	t.Helper()
	c, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := rt.GetContainerEvents(c, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatalf("GetContainerEvents: %v", err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatalf("GetContainerEvents header: %v", err)
	}
	return stream
}

// eventLog is what one subscriber received, read in the background.
type eventLog struct {
	mu     sync.Mutex
	events []*runtimeapi.ContainerEventResponse
	err    error // why the stream ended
}

// listen subscribes and keeps reading until the stream ends.
func (e *env) listen() *eventLog {
	e.t.Helper()
	stream := subscribe(e.t, e.rt)
	l := &eventLog{}
	go func() {
		for {
			ev, err := stream.Recv()
			l.mu.Lock()
			if err != nil {
				l.err = err
				l.mu.Unlock()
				return
			}
			l.events = append(l.events, ev)
			l.mu.Unlock()
		}
	}()
	return l
}

// of returns the events of one container (or sandbox) ID so far.
func (l *eventLog) of(id string) []*runtimeapi.ContainerEventResponse {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*runtimeapi.ContainerEventResponse
	for _, ev := range l.events {
		if ev.GetContainerId() == id {
			out = append(out, ev)
		}
	}
	return out
}

func (l *eventLog) all() []*runtimeapi.ContainerEventResponse {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*runtimeapi.ContainerEventResponse(nil), l.events...)
}

func (l *eventLog) ended() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// expectEvents waits until l holds as many events of id as want lists
// and checks they are exactly those, in that order.
func (e *env) expectEvents(l *eventLog, id string, want ...runtimeapi.ContainerEventType) []*runtimeapi.ContainerEventResponse {
	e.t.Helper()
	testutil.Eventually(e.t, fmt.Sprintf("%d events of %.12s", len(want), id), func() bool {
		if err := l.ended(); err != nil {
			e.t.Fatalf("event stream ended: %v", err)
		}
		return len(l.of(id)) >= len(want)
	})
	got := l.of(id)
	if len(got) != len(want) {
		e.t.Fatalf("events of %.12s: %v, want %v", id, eventTypes(got), want)
	}
	for i := range want {
		if got[i].GetContainerEventType() != want[i] {
			e.t.Fatalf("events of %.12s: %v, want %v", id, eventTypes(got), want)
		}
	}
	return got
}

func eventTypes(evs []*runtimeapi.ContainerEventResponse) []runtimeapi.ContainerEventType {
	var out []runtimeapi.ContainerEventType
	for _, ev := range evs {
		out = append(out, ev.GetContainerEventType())
	}
	return out
}

func statusOf(evs []*runtimeapi.ContainerStatus, id string) *runtimeapi.ContainerStatus {
	for _, st := range evs {
		if st.GetId() == id {
			return st
		}
	}
	return nil
}

// waitForTrigger is a command that exits with code 3 once the file
// /trigger/go appears.
var waitForTrigger = []string{"sh", "-c", "while [ ! -e /trigger/go ]; do sleep 0.05; done; exit 3"}

// triggerDir is a host directory mounted at /trigger.
func (e *env) triggerDir() (string, ctrOpt) {
	e.t.Helper()
	dir := filepath.Join(e.d.Dir, "trigger")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	return dir, withMount(dir, "/trigger", false)
}

func TestEventsContainerLifecycle(t *testing.T) {
	e := newEnv(t)
	first, second := e.listen(), e.listen()
	pod := e.podConfig("events")
	podID := e.runPod(pod)
	trigger, mount := e.triggerDir()
	id := e.start(podID, pod, containerConfig("selfexit", waitForTrigger, mount))
	e.expectEvents(first, id, created, started)

	// The container exits by itself, with nobody asking about it: STOPPED
	// still comes, carrying the exit.
	mustWrite(t, filepath.Join(trigger, "go"), "")
	evs := e.expectEvents(first, id, created, started, stopped)
	st := statusOf(evs[2].GetContainersStatuses(), id)
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetExitCode() != 3 {
		t.Errorf("STOPPED event: container status %v, want exited with code 3", st)
	}
	if ps := evs[2].GetPodSandboxStatus(); ps.GetId() != podID || ps.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY || ps.GetMetadata().GetUid() != pod.GetMetadata().GetUid() {
		t.Errorf("STOPPED event: sandbox status %v", ps)
	}

	if _, err := e.rt.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*eventLog{first, second} {
		evs := e.expectEvents(l, id, created, started, stopped, deleted)
		for i, ev := range evs {
			if ev.GetPodSandboxStatus().GetId() != podID {
				t.Errorf("event %d of the container has sandbox status %v", i, ev.GetPodSandboxStatus())
			}
			if i > 0 && ev.GetCreatedAt() < evs[i-1].GetCreatedAt() {
				t.Errorf("event %d is older than the one before", i)
			}
		}
		if st := statusOf(evs[0].GetContainersStatuses(), id); st.GetState() != runtimeapi.ContainerState_CONTAINER_CREATED {
			t.Errorf("CREATED event: container status %v", st)
		}
		if statusOf(evs[3].GetContainersStatuses(), id) != nil {
			t.Error("DELETED event still lists the container")
		}
	}

	// The sandbox is reported under its own ID, its last status included
	// when it is deleted.
	e.removePod(podID)
	for _, l := range []*eventLog{first, second} {
		evs := e.expectEvents(l, podID, created, started, stopped, deleted)
		if ps := evs[3].GetPodSandboxStatus(); ps.GetId() != podID || ps.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
			t.Errorf("sandbox DELETED event: sandbox status %v", ps)
		}
	}
}

// A subscriber that stops reading must not hold anything up: berthd drops
// it once it is too far behind, and it learns so when it reads again.
func TestEventsSlowSubscriberDoesNotBlock(t *testing.T) {
	e := newEnv(t)
	reader := e.listen()
	// Small fixed HTTP/2 windows, so that what the stuck subscriber's
	// transport buffers is bounded, and berthd's queue must overflow.
	conn, err := grpc.NewClient("unix://"+e.d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stuck := subscribe(t, runtimeapi.NewRuntimeServiceClient(conn))

	pod := e.podConfig("flood")
	podID := e.runPod(pod)
	const cycles = 300
	var ids []string
	for i := range cycles {
		// Each call has a deadline (ctx): a blocked publisher would fail it.
		id := e.create(podID, pod, containerConfig(fmt.Sprintf("c%d", i), []string{"true"}))
		if _, err := e.rt.RemoveContainer(ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// The subscriber that reads gets everything.
	for _, id := range ids {
		e.expectEvents(reader, id, created, deleted)
	}
	all := reader.all()

	// The stuck one gets what was queued before it was dropped, in order
	// and without gaps, then Unavailable.
	type result struct {
		got []*runtimeapi.ContainerEventResponse
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		for {
			ev, err := stuck.Recv()
			if err != nil {
				r.err = err
				done <- r
				return
			}
			r.got = append(r.got, ev)
		}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(time.Minute):
		t.Fatalf("the stuck subscriber was never dropped, after %d events", len(all))
	}
	if status.Code(r.err) != codes.Unavailable || !strings.Contains(status.Convert(r.err).Message(), "relist") {
		t.Errorf("stuck subscriber's stream ended with %v, want Unavailable asking to relist", r.err)
	}
	if len(r.got) >= len(all) {
		t.Errorf("stuck subscriber got all %d events, yet was dropped", len(r.got))
	}
	for i, ev := range r.got {
		if ev.GetContainerId() != all[i].GetContainerId() || ev.GetContainerEventType() != all[i].GetContainerEventType() {
			t.Fatalf("stuck subscriber's event %d is %.12s %v, the reader's %.12s %v", i,
				ev.GetContainerId(), ev.GetContainerEventType(), all[i].GetContainerId(), all[i].GetContainerEventType())
		}
	}
	t.Logf("%d events; the stuck subscriber got %d before it was dropped", len(all), len(r.got))

	// A new subscription works as before.
	again := e.listen()
	id := e.create(podID, pod, containerConfig("after", []string{"true"}))
	e.expectEvents(again, id, created)
}

// Exits are watched across a restart of berthd: the container and the
// pause process it found running are reported STOPPED when they end.
func TestEventsAfterRestart(t *testing.T) {
	e := newEnv(t)
	pod := e.podConfig("events-restart")
	podID := e.runPod(pod)
	trigger, mount := e.triggerDir()
	id := e.start(podID, pod, containerConfig("selfexit", waitForTrigger, mount))

	e.restart()
	l := e.listen()
	mustWrite(t, filepath.Join(trigger, "go"), "")
	evs := e.expectEvents(l, id, stopped)
	if st := statusOf(evs[0].GetContainersStatuses(), id); st.GetExitCode() != 3 {
		t.Errorf("STOPPED event: container status %v, want exit code 3", st)
	}

	// The pause process dies: the sandbox is reported STOPPED.
	resp, err := e.rt.PodSandboxStatus(ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil || info.Pid <= 0 {
		t.Fatalf("verbose info %q: no pid (%v)", resp.GetInfo()["info"], err)
	}
	if err := syscall.Kill(info.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	evs = e.expectEvents(l, podID, stopped)
	if ps := evs[0].GetPodSandboxStatus(); ps.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("sandbox STOPPED event: sandbox status %v", ps)
	}
}
