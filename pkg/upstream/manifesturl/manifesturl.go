// Package manifesturl is the "url" upstream plugin, kubelet's
// staticPodURL: it polls a URL serving one Pod, a v1.PodList or a
// multi-document YAML of Pods, and hands the pods to berth as static pods
// named the way kubelet names them (<name>-<node>, annotated
// kubernetes.io/config.source=http).
//
// It is also the worked example of an upstream plugin (package upstream):
// it calls Sink.Pods only with a complete, valid set, and Sink.Connected
// after every poll, so an unreachable URL or a bad answer leaves the last
// good set running.
package manifesturl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/berth-project/berth/pkg/manifest"
	"github.com/berth-project/berth/pkg/upstream"
)

// MaxAnswer is the largest answer read: a list of many pods fits, a
// runaway server does not fill berthd's memory.
const MaxAnswer = 8 << 20

// Config is what the plugin needs.
type Config struct {
	URL string
	// Header is sent with every request (kubelet's staticPodURLHeader).
	Header   http.Header
	NodeName string
	// Interval between polls; kubelet's httpCheckFrequency, 20 s.
	Interval time.Duration
	// TLS, if set, is used for HTTPS (tests give their CA here).
	TLS *tls.Config
	Log *slog.Logger
}

// Plugin polls the URL.
type Plugin struct {
	cfg    Config
	client *http.Client
}

// New checks cfg and returns the plugin.
func New(cfg Config) (*Plugin, error) {
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return nil, fmt.Errorf("manifest URL %q: must start with http:// or https://", cfg.URL)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 20 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLS != nil {
		tr.TLSClientConfig = cfg.TLS
	}
	// A poll that takes longer than the interval is a failed poll.
	return &Plugin{cfg: cfg, client: &http.Client{Transport: tr, Timeout: min(cfg.Interval, 30*time.Second)}}, nil
}

// Name is "url".
func (p *Plugin) Name() string { return "url" }

// Run polls now and every Interval until ctx ends.
func (p *Plugin) Run(ctx context.Context, sink upstream.Sink) error {
	tick := time.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	var reported string
	for {
		err := p.poll(ctx, sink)
		if ctx.Err() != nil {
			return nil
		}
		sink.Connected(err)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != "" && msg != reported { // each distinct problem once
			p.cfg.Log.Error("manifest URL: keeping the last good pods", "url", p.cfg.URL, "err", err)
		}
		reported = msg
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// poll fetches and parses the answer; only a complete, valid one reaches
// the sink.
func (p *Plugin) poll(ctx context.Context, sink upstream.Sink) error {
	data, err := p.fetch(ctx)
	if err != nil {
		return err
	}
	pods, err := manifest.ParseURL(p.cfg.URL, data, p.cfg.NodeName)
	if err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	sink.Pods(pods)
	return nil
}

func (p *Plugin) fetch(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.URL, nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range p.cfg.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", p.cfg.URL, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", p.cfg.URL, err)
	}
	if len(data) > MaxAnswer {
		return nil, fmt.Errorf("refused: %s: the answer exceeds %d MiB", p.cfg.URL, MaxAnswer>>20)
	}
	if len(data) == 0 {
		// kubelet refuses an empty answer too: a server that lost its
		// file must not remove every pod.
		return nil, errors.New("refused: " + p.cfg.URL + ": empty answer")
	}
	return data, nil
}
