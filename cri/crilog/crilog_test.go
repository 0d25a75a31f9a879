package crilog

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func fixedClock() time.Time { return time.Date(2016, 10, 6, 0, 17, 9, 669794202, time.UTC) }

func TestCopy(t *testing.T) {
	long := strings.Repeat("x", MaxLine+10)
	tests := []struct {
		name, in, want string
	}{
		{"lines", "a\nb\n", "2016-10-06T00:17:09.669794202Z stdout F a\n2016-10-06T00:17:09.669794202Z stdout F b\n"},
		{"no trailing newline", "a\nb", "2016-10-06T00:17:09.669794202Z stdout F a\n2016-10-06T00:17:09.669794202Z stdout F b\n"},
		{"empty line", "\n", "2016-10-06T00:17:09.669794202Z stdout F \n"},
		{"nothing", "", ""},
		{"long line split", long + "\n",
			"2016-10-06T00:17:09.669794202Z stdout P " + long[:MaxLine] + "\n" +
				"2016-10-06T00:17:09.669794202Z stdout F " + long[MaxLine:] + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := NewWriter(&out, fixedClock)
			if err := w.Copy("stdout", strings.NewReader(tt.in)); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != tt.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestStreamsDoNotInterleave(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, fixedClock)
	done := make(chan struct{})
	go func() {
		w.Copy("stderr", strings.NewReader(strings.Repeat("eeee\n", 1000)))
		close(done)
	}()
	w.Copy("stdout", strings.NewReader(strings.Repeat("oooo\n", 1000)))
	<-done
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2000 {
		t.Fatalf("got %d records, want 2000", len(lines))
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, " stdout F oooo") && !strings.HasSuffix(l, " stderr F eeee") {
			t.Fatalf("torn record %q", l)
		}
	}
}
