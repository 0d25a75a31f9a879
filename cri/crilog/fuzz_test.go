package crilog

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzSeeds are outputs a container may write: lines, none, a trailing
// piece, and lines at and around the length that splits them.
func fuzzSeeds() [][]byte {
	long := strings.Repeat("x", MaxLine)
	var out [][]byte
	for _, s := range []string{
		"a\nb\n", "a\nb", "\n", "", "\r\n\x00\xff", "a b c\n",
		long, long + "\n", long + "y", long + long, long[1:] + "\n" + long + "\n",
	} {
		out = append(out, []byte(s))
	}
	return out
}

// FuzzCopy copies arbitrary container output through a Writer. Every
// record is "<time> <stream> <P|F> <text>" with the writer's time and
// stream; a partial record is a full buffer; and joining the records
// back (P pieces glued, F ending a line) gives exactly what was written,
// a missing final newline added: what a reader shows is the output.
func FuzzCopy(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s, false)
	}
	f.Add([]byte("err\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, stderr bool) {
		stream := "stdout"
		if stderr {
			stream = "stderr"
		}
		var out bytes.Buffer
		if err := NewWriter(&out, fixedClock).Copy(stream, bytes.NewReader(data)); err != nil {
			t.Fatalf("Copy: %v", err)
		}
		got := joinRecords(t, out.Bytes(), stream)
		want := data
		if len(data) > 0 && data[len(data)-1] != '\n' {
			want = append(bytes.Clone(data), '\n')
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%d bytes written, ending %.64q; the records join to %d bytes, ending %.64q; the last record: %.80q",
				len(want), tail(want), len(got), tail(got), tail(out.Bytes()))
		}
	})
}

// joinRecords checks records and returns the output they stand for.
func joinRecords(t *testing.T, records []byte, stream string) []byte {
	t.Helper()
	at := fixedClock().Format(time.RFC3339Nano)
	var joined []byte
	for rec := range bytes.SplitAfterSeq(records, []byte("\n")) {
		if len(rec) == 0 {
			continue
		}
		f := bytes.SplitN(bytes.TrimSuffix(rec, []byte("\n")), []byte(" "), 4)
		if len(f) != 4 || !bytes.HasSuffix(rec, []byte("\n")) || string(f[0]) != at || string(f[1]) != stream {
			t.Fatalf("malformed record %q", rec)
		}
		switch text := f[3]; string(f[2]) {
		case "P":
			if len(text) != MaxLine {
				t.Fatalf("partial record of %d bytes, want a full buffer of %d", len(text), MaxLine)
			}
			joined = append(joined, text...)
		case "F":
			if len(text) > MaxLine {
				t.Fatalf("record of %d bytes, over %d", len(text), MaxLine)
			}
			joined = append(append(joined, text...), '\n')
		default:
			t.Fatalf("record %q is neither P nor F", rec)
		}
	}
	return joined
}

// FuzzFile writes container output through a rotating File, of a maximum
// size the fuzzer picks, keeping every rotated file. No record is lost,
// doubled, reordered or cut at a rotation; every file ends at a record;
// and none grows past the maximum unless it holds a single record.
func FuzzFile(f *testing.F) {
	for i, s := range fuzzSeeds() {
		f.Add(s, uint8(i))
	}
	f.Add([]byte(strings.Repeat("line\n", 100)), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, size uint8) {
		maxSize := 64 + int64(size)*16 // small enough to rotate, large enough for a few rotations only
		path := filepath.Join(t.TempDir(), "0.log")
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		clock := func() time.Time { now = now.Add(time.Millisecond); return now }
		l, err := OpenFile(path, maxSize, 1<<20, clock)
		if err != nil {
			t.Fatal(err)
		}
		var written bytes.Buffer
		if err := NewWriter(io.MultiWriter(l, &written), clock).Copy("stdout", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if n := l.Dropped(); n != 0 {
			t.Errorf("%d records dropped", n)
		}
		var all []byte
		for _, name := range append(l.rotatedFiles(), path) {
			content := readLog(t, name)
			if len(content) > 0 && content[len(content)-1] != '\n' {
				t.Errorf("%s ends inside a record", name)
			}
			if int64(len(content)) > maxSize && bytes.Count(content, []byte("\n")) > 1 {
				t.Errorf("%s: %d bytes of several records, past the maximum of %d", name, len(content), maxSize)
			}
			all = append(all, content...)
		}
		if !bytes.Equal(all, written.Bytes()) {
			t.Errorf("the files hold %d bytes, ending %.64q; the writer wrote %d, ending %.64q",
				len(all), tail(all), written.Len(), tail(written.Bytes()))
		}
	})
}

// tail is the last 80 bytes of b, for messages.
func tail(b []byte) []byte { return b[max(len(b)-80, 0):] }

// readLog reads a log file, gunzipped if its name says so.
func readLog(t *testing.T, name string) []byte {
	t.Helper()
	fh, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var r io.Reader = fh
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(fh)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r = zr
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return data
}
