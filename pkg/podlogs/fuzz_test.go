package podlogs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/cri/crilog"
)

// FuzzReader reads arbitrary bytes as a CRI log file. What Copy writes is
// never more than the file holds (nor than LimitBytes); the last n
// records are the end of all of them, and a limit cuts a prefix. And the
// output of a container, written by the shim's writer, reads back exactly
// (a missing final newline added).
func FuzzReader(f *testing.F) {
	long := strings.Repeat("x", crilog.MaxLine)
	for _, s := range []string{
		"2026-01-01T00:00:00.000000000Z stdout F 0\n2026-01-01T00:00:00.000000000Z stderr F 1\n",
		"2026-01-01T00:00:00Z stdout P part\n2026-01-01T00:00:00Z stdout F end\n",
		"2026-01-01T00:00:00Z stdout F\n2026-01-01T00:00:00Z stdout F \n",
		"not a record\n t  F x\n\n2026-01-01T00:00:00Z stdout X y\n",
		"2026-01-01T00:00:00Z stdout F no newline",
		"", "\n", "a\nb", long, long + "\n",
	} {
		f.Add([]byte(s), int8(-1), uint16(0), false)
	}
	f.Add([]byte("2026-01-01T00:00:00Z stdout F 0\n2026-01-01T00:00:00Z stdout F 1\n"), int8(1), uint16(3), true)

	f.Fuzz(func(t *testing.T, data []byte, tail int8, limit uint16, timestamps bool) {
		dir := t.TempDir()
		raw := filepath.Join(dir, "raw.log")
		if err := os.WriteFile(raw, data, 0o644); err != nil {
			t.Fatal(err)
		}
		all := copyLog(t, raw, Options{Tail: -1, Timestamps: timestamps})
		if len(all) > len(data) {
			t.Fatalf("a log of %d bytes reads as %d", len(data), len(all))
		}
		last := copyLog(t, raw, Options{Tail: int(tail), Timestamps: timestamps})
		if !bytes.HasSuffix(all, last) {
			t.Fatalf("tail %d: %.80q is not the end of the log", tail, last)
		}
		cut := copyLog(t, raw, Options{Tail: int(tail), Timestamps: timestamps, LimitBytes: int64(limit)})
		if (limit > 0 && len(cut) > int(limit)) || !bytes.HasPrefix(last, cut) {
			t.Fatalf("limit %d: %d bytes, %.80q, not the start of %.80q", limit, len(cut), cut, last)
		}

		written := filepath.Join(dir, "0.log")
		out, err := os.Create(written)
		if err != nil {
			t.Fatal(err)
		}
		clock := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
		if err := crilog.NewWriter(out, clock).Copy("stdout", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
		want := data
		if len(data) > 0 && data[len(data)-1] != '\n' {
			want = append(bytes.Clone(data), '\n')
		}
		if got := copyLog(t, written, Options{Tail: -1}); !bytes.Equal(got, want) {
			t.Fatalf("%d bytes of output, ending %.64q, read back as %d, ending %.64q",
				len(want), want[max(len(want)-64, 0):], len(got), got[max(len(got)-64, 0):])
		}
	})
}

// copyLog is what Copy writes of the log at path, without following it.
func copyLog(t *testing.T, path string, o Options) []byte {
	t.Helper()
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out bytes.Buffer
	if err := r.Copy(context.Background(), &out, o, false, time.Second, nil); err != nil {
		t.Fatalf("Copy %+v: %v", o, err)
	}
	return out.Bytes()
}
