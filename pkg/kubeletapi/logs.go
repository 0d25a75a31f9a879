package kubeletapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"google.golang.org/grpc"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/pkg/podlogs"
)

// ContainerRuntime is the slice of the CRI that logs and /run need.
type ContainerRuntime interface {
	// ContainerStatus gives a container's log path and state.
	ContainerStatus(ctx context.Context, in *runtimeapi.ContainerStatusRequest, opts ...grpc.CallOption) (*runtimeapi.ContainerStatusResponse, error)
	// ExecSync runs a command in a container and returns its output.
	ExecSync(ctx context.Context, in *runtimeapi.ExecSyncRequest, opts ...grpc.CallOption) (*runtimeapi.ExecSyncResponse, error)
}

// serveContainerLogs answers /containerLogs/{namespace}/{pod}/{container}
// as kubelet does: the container's CRI log file with PodLogOptions from the
// query; a follow goes on across the shim's rotations without loss
// (pkg/podlogs) and ends once the container has exited.
func (s *Server) serveContainerLogs(w http.ResponseWriter, r *http.Request) {
	opts, err := parseLogOptions(r.URL.Query())
	if err != nil {
		writeError(w, err)
		return
	}
	pod, err := s.pod(r.PathValue("namespace"), r.PathValue("pod"), "")
	if err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("container")
	if !hasContainer(pod, name) {
		writeError(w, errorf(http.StatusNotFound, "container %q not found in pod %s/%s", name, pod.Namespace, pod.Name))
		return
	}
	id, err := logContainerID(pod, name, opts.Previous)
	if err != nil {
		writeError(w, err)
		return
	}
	st, err := s.cfg.Containers.ContainerStatus(r.Context(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		s.cfg.Log.Debug("container status for logs", "container", id, "err", err)
		writeError(w, errorf(http.StatusBadRequest, "unable to retrieve container logs for %s", id))
		return
	}
	out := flushWriter{w: w, rc: http.NewResponseController(w)}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	// Sent at once, so that a follower sees the stream open before the
	// container writes anything.
	out.rc.Flush()
	lr, err := podlogs.Open(st.GetStatus().GetLogPath())
	if err == nil {
		defer lr.Close()
		err = lr.Copy(r.Context(), out, logOptions(opts, s.cfg.Clock.Now()), opts.Follow, 100*time.Millisecond, s.exited(id))
	}
	if err != nil && r.Context().Err() == nil {
		s.cfg.Log.Warn("container logs", "pod", pod.Namespace+"/"+pod.Name, "container", name, "err", err)
		fmt.Fprintln(w, err)
	}
}

// exited says, at most once a second, whether the container no longer
// runs: a follow of its log ends once the log is read to its end.
func (s *Server) exited(id string) func() bool {
	var asked time.Time
	var gone bool
	return func() bool {
		if gone || s.cfg.Clock.Since(asked) < time.Second {
			return gone
		}
		asked = s.cfg.Clock.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := s.cfg.Containers.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
		gone = err == nil && st.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING
		return gone
	}
}

// flushWriter sends each write at once: followed logs must not wait in a
// buffer.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// parseLogOptions reads the query as kubelet decodes v1.PodLogOptions
// (with the old "tail" spelling of tailLines), and validates it as the API
// server does: 400 for what cannot be read, 422 for invalid values.
func parseLogOptions(q url.Values) (*v1.PodLogOptions, error) {
	if tail, ok := q["tail"]; ok && len(tail) > 0 {
		q = cloneValues(q)
		q["tailLines"] = tail
		if tail[0] == "all" {
			delete(q, "tailLines")
		}
	}
	o := &v1.PodLogOptions{}
	for _, f := range []struct {
		name    string
		convert func(*[]string) error
	}{
		{"container", func(v *[]string) error { return runtime.Convert_Slice_string_To_string(v, &o.Container, nil) }},
		{"follow", func(v *[]string) error { return runtime.Convert_Slice_string_To_bool(v, &o.Follow, nil) }},
		{"previous", func(v *[]string) error { return runtime.Convert_Slice_string_To_bool(v, &o.Previous, nil) }},
		{"sinceSeconds", func(v *[]string) error { return runtime.Convert_Slice_string_To_Pointer_int64(v, &o.SinceSeconds, nil) }},
		{"sinceTime", func(v *[]string) error { return metav1.Convert_Slice_string_To_Pointer_v1_Time(v, &o.SinceTime, nil) }},
		{"timestamps", func(v *[]string) error { return runtime.Convert_Slice_string_To_bool(v, &o.Timestamps, nil) }},
		{"tailLines", func(v *[]string) error { return runtime.Convert_Slice_string_To_Pointer_int64(v, &o.TailLines, nil) }},
		{"limitBytes", func(v *[]string) error { return runtime.Convert_Slice_string_To_Pointer_int64(v, &o.LimitBytes, nil) }},
		{"insecureSkipTLSVerifyBackend", func(v *[]string) error {
			return runtime.Convert_Slice_string_To_bool(v, &o.InsecureSkipTLSVerifyBackend, nil)
		}},
		{"stream", func(v *[]string) error {
			o.Stream = &(*v)[0]
			return nil
		}},
	} {
		if v, ok := q[f.name]; ok && len(v) > 0 {
			if err := f.convert(&v); err != nil {
				return nil, errorf(http.StatusBadRequest, "query parameter %s=%q: %v", f.name, v[0], err)
			}
		}
	}
	switch {
	case o.TailLines != nil && *o.TailLines < 0:
		return nil, errorf(http.StatusUnprocessableEntity, "tailLines %d: must be greater than or equal to 0", *o.TailLines)
	case o.LimitBytes != nil && *o.LimitBytes < 1:
		return nil, errorf(http.StatusUnprocessableEntity, "limitBytes %d: must be greater than 0", *o.LimitBytes)
	case o.SinceSeconds != nil && o.SinceTime != nil:
		return nil, errorf(http.StatusUnprocessableEntity, "at most one of sinceTime or sinceSeconds may be specified")
	case o.SinceSeconds != nil && *o.SinceSeconds < 1:
		return nil, errorf(http.StatusUnprocessableEntity, "sinceSeconds %d: must be greater than 0", *o.SinceSeconds)
	case o.Stream != nil && *o.Stream != v1.LogStreamAll:
		// kubelet's answer without its alpha PodLogsQuerySplitStreams.
		return nil, errorf(http.StatusBadRequest, "unable to return the given log stream: %q", *o.Stream)
	}
	return o, nil
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = v
	}
	return out
}

// criLogOptions are the reader's options for o at now, as kubelet makes
// them: the later of sinceSeconds and sinceTime bounds the start.
func logOptions(o *v1.PodLogOptions, now time.Time) podlogs.Options {
	out := podlogs.Options{Tail: -1, Timestamps: o.Timestamps}
	if o.TailLines != nil {
		out.Tail = int(*o.TailLines)
	}
	if o.LimitBytes != nil {
		out.LimitBytes = *o.LimitBytes
	}
	if o.SinceSeconds != nil {
		out.Since = now.Add(-time.Duration(*o.SinceSeconds) * time.Second)
	}
	if o.SinceTime != nil && o.SinceTime.After(out.Since) {
		out.Since = o.SinceTime.Time
	}
	return out
}

// logContainerID picks the container whose log is read, from the pod's
// status, as kubelet does: the previous attempt's with previous, else the
// running one, else the last that ran. The errors are kubelet's (400).
func logContainerID(pod *v1.Pod, name string, previous bool) (string, error) {
	cs, ok := containerStatus(pod, name)
	if !ok {
		return "", errorf(http.StatusBadRequest, "container %q in pod %q is not available", name, pod.Name)
	}
	last := cs.LastTerminationState.Terminated
	switch st := cs.State; {
	case previous:
		if last == nil || last.ContainerID == "" {
			return "", errorf(http.StatusBadRequest, "previous terminated container %q in pod %q not found", name, pod.Name)
		}
		return runtimeID(last.ContainerID), nil
	case st.Running != nil:
		return runtimeID(cs.ContainerID), nil
	case st.Terminated != nil:
		if st.Terminated.ContainerID != "" {
			return runtimeID(st.Terminated.ContainerID), nil
		}
		if last != nil && last.ContainerID != "" {
			return runtimeID(last.ContainerID), nil
		}
		return "", errorf(http.StatusBadRequest, "container %q in pod %q is terminated", name, pod.Name)
	case last != nil:
		if last.ContainerID == "" {
			return "", errorf(http.StatusBadRequest, "container %q in pod %q is terminated", name, pod.Name)
		}
		return runtimeID(last.ContainerID), nil
	case st.Waiting != nil:
		switch st.Waiting.Reason {
		case "ErrImagePull":
			return "", errorf(http.StatusBadRequest, "container %q in pod %q is waiting to start: image can't be pulled", name, pod.Name)
		case "ImagePullBackOff":
			return "", errorf(http.StatusBadRequest, "container %q in pod %q is waiting to start: trying and failing to pull image", name, pod.Name)
		}
		return "", errorf(http.StatusBadRequest, "container %q in pod %q is waiting to start: %s", name, pod.Name, st.Waiting.Reason)
	}
	return "", errorf(http.StatusBadRequest, "container %q in pod %q is waiting to start - no logs yet", name, pod.Name)
}
