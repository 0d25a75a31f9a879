package runc

import (
	"context"
	"strings"
)

// Version is what `runc --version` reports.
type Version struct {
	Version string `json:"version"`          // e.g. 1.5.2
	Commit  string `json:"commit,omitempty"` // absent from builds outside git
	Spec    string `json:"spec,omitempty"`   // OCI runtime-spec version
}

// Version runs `runc --version`.
func (r *Runc) Version(ctx context.Context) (Version, error) {
	out, err := r.Command(ctx, "", "--version").Output()
	if err != nil {
		return Version{}, Classify("--version", nil, err)
	}
	return parseVersion(string(out)), nil
}

// parseVersion reads lines like "runc version 1.5.2", "commit: v1.5.2-0-g…"
// and "spec: 1.3.0"; unknown lines are ignored.
func parseVersion(out string) Version {
	var v Version
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "runc version "):
			v.Version = strings.TrimPrefix(line, "runc version ")
		case strings.HasPrefix(line, "commit:"):
			v.Commit = strings.TrimSpace(strings.TrimPrefix(line, "commit:"))
		case strings.HasPrefix(line, "spec:"):
			v.Spec = strings.TrimSpace(strings.TrimPrefix(line, "spec:"))
		}
	}
	return v
}
