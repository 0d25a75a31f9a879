// Package source watches the static pod manifest directory and hands the
// agent the complete set of manifest files whenever it changes.
package source

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/berth-project/berth/pkg/manifest"
)

// Dir is a manifest directory.
type Dir struct {
	Path     string
	NodeName string
	// Resync re-reads the directory even without events, as a safety net
	// (events can be lost, e.g. when the directory is replaced).
	Resync time.Duration
	Log    *slog.Logger
}

// settle is how long a burst of events is given to end before the
// directory is read: an editor's save is several events.
const settle = 5 * time.Millisecond

// Run reads the directory now, after every change and every Resync, and
// passes all its files to update, until ctx ends: each file's Pods are
// what should run, its Err what is wrong with it (see memory). Invalid
// files are logged once per distinct error.
func (d Dir) Run(ctx context.Context, update func([]manifest.File)) error {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Resync == 0 {
		d.Resync = 30 * time.Second
	}
	if err := os.MkdirAll(d.Path, 0o755); err != nil {
		return fmt.Errorf("manifest directory: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch manifest directory: %w", err)
	}
	defer w.Close()
	if err := w.Add(d.Path); err != nil {
		return fmt.Errorf("watch manifest directory %s: %w", d.Path, err)
	}
	watching := true
	mem := newMemory()
	reported := map[string]string{}
	read := func() {
		// A directory that was removed or replaced is watched again once
		// it is back.
		if !watching && w.Add(d.Path) == nil {
			watching = true
		}
		files, err := manifest.ReadDir(d.Path, d.NodeName)
		if err != nil {
			d.Log.Warn("read manifest directory", "dir", d.Path, "err", err)
			return
		}
		files = mem.apply(files)
		now := map[string]string{}
		for _, f := range files {
			if f.Err != nil {
				now[f.Path] = f.Err.Error()
				if reported[f.Path] != now[f.Path] {
					d.Log.Error("invalid manifest: skipped", "file", f.Path, "err", f.Err)
				}
			}
		}
		reported = now
		update(files)
	}
	read()
	resync := time.NewTicker(d.Resync)
	defer resync.Stop()
	var pending <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if ev.Name == d.Path && ev.Op&(fsnotify.Remove|fsnotify.Rename) != 0 {
				watching = false
				w.Remove(d.Path)
			}
			if pending == nil {
				pending = time.After(settle)
			}
		case err := <-w.Errors:
			d.Log.Warn("manifest directory watch", "err", err)
			if pending == nil {
				pending = time.After(settle) // events may be lost: read again
			}
		case <-pending:
			pending = nil
			read()
		case <-resync.C:
			read()
		}
	}
}
