package manifesturl

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/berth-project/berth/test/testutil"
)

// sink records what the plugin said last.
type sink struct {
	mu    sync.Mutex
	pods  []string
	sets  int
	err   error
	polls int
}

func (s *sink) Pods(pods []*v1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sets++
	s.pods = nil
	for _, p := range pods {
		s.pods = append(s.pods, p.Namespace+"/"+p.Name+" "+p.Annotations["kubernetes.io/config.source"])
	}
}

func (s *sink) Connected(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
	s.polls++
}

func (s *sink) state() (pods string, sets, polls int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.pods, ","), s.sets, s.polls, s.err
}

// server serves whatever answer holds.
type server struct {
	mu     sync.Mutex
	status int
	body   string
	header string // the X-Token a request carried
}

func (s *server) set(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.header = r.Header.Get("X-Token")
	w.WriteHeader(s.status)
	w.Write([]byte(s.body))
}

const list = `{"apiVersion":"v1","kind":"PodList","items":[
 {"metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"busybox"}]}},
 {"metadata":{"name":"b","namespace":"ops"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}]}`

const onePod = "apiVersion: v1\nkind: Pod\nmetadata: {name: solo}\nspec:\n  containers: [{name: c, image: busybox}]\n"

func TestPluginFollowsTheURL(t *testing.T) {
	for _, tls := range []bool{false, true} {
		srv := &server{status: 200, body: list}
		var ts *httptest.Server
		if tls {
			ts = httptest.NewTLSServer(srv)
		} else {
			ts = httptest.NewServer(srv)
		}
		defer ts.Close()
		cfg := Config{URL: ts.URL + "/pods", NodeName: "n1", Interval: 10 * time.Millisecond,
			Header: http.Header{"X-Token": {"secret"}}}
		if tls {
			cfg.TLS = ts.Client().Transport.(*http.Transport).TLSClientConfig
		}
		p, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s := &sink{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx, s) }()

		until := func(what string, ok func(pods string, sets, polls int, err error) bool) {
			t.Helper()
			testutil.Eventually(t, what, func() bool { return ok(s.state()) })
		}
		until("the list's pods", func(pods string, _, _ int, err error) bool {
			return pods == "default/a-n1 http,ops/b-n1 http" && err == nil
		})
		srv.mu.Lock()
		if srv.header != "secret" {
			t.Errorf("header X-Token %q, want the configured one", srv.header)
		}
		srv.mu.Unlock()

		srv.set(200, onePod)
		until("the changed answer", func(pods string, _, _ int, _ error) bool { return pods == "default/solo-n1 http" })

		// Broken in three ways: each keeps the last good set and says why.
		for _, bad := range []struct {
			status int
			body   string
			reason string
		}{
			{503, "down", "503 Service Unavailable"},
			{200, "", "empty answer"},
			{200, onePod + "---\nkind: Deployment\n", `document 2: kind "Deployment"`},
			{200, strings.Repeat("#", MaxAnswer+1), "exceeds 8 MiB"},
		} {
			srv.set(bad.status, bad.body)
			until(bad.reason, func(_ string, _, _ int, err error) bool {
				return err != nil && strings.Contains(err.Error(), bad.reason)
			})
			_, sets, polls, _ := s.state()
			until("another poll", func(_ string, _, nowPolls int, _ error) bool { return nowPolls > polls })
			if pods, nowSets, _, _ := s.state(); nowSets != sets || pods != "default/solo-n1 http" {
				t.Errorf("%s: the set changed to %q", bad.reason, pods)
			}
		}

		// Back, with an empty list: an explicit empty set.
		srv.set(200, `{"apiVersion":"v1","kind":"PodList","items":[]}`)
		until("the empty list", func(pods string, _, _ int, err error) bool { return pods == "" && err == nil })
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestPluginUnreachable(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close() // nothing listens there now
	p, err := New(Config{URL: url, NodeName: "n1", Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx, s)
	testutil.Eventually(t, "a connection error", func() bool {
		_, _, polls, err := s.state()
		return polls > 1 && err != nil && strings.Contains(err.Error(), "connection refused")
	})
	if _, sets, _, _ := s.state(); sets != 0 {
		t.Errorf("an unreachable URL handed over %d sets", sets)
	}
}

func TestNewRefusesOtherSchemes(t *testing.T) {
	for _, u := range []string{"file:///etc/passwd", "ftp://h/x", "", "/pods"} {
		if _, err := New(Config{URL: u}); err == nil || !strings.Contains(err.Error(), "http:// or https://") {
			t.Errorf("%q: %v", u, err)
		}
	}
}
