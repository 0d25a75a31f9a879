// Package crilog writes container output in the CRI log format that
// kubelet, crictl and log collectors read:
//
//	2016-10-06T00:17:09.669794202Z stdout F a complete line
//	2016-10-06T00:17:09.669794202Z stderr P the first part of a long line
//
// Lines longer than the buffer are split into P (partial) records followed
// by one F (final) record, so a reader can join them back.
package crilog

import (
	"bufio"
	"errors"
	"io"
	"sync"
	"time"
)

// MaxLine is the longest piece written as one record; longer lines are
// split into partial records. It matches what kubelet's reader expects.
const MaxLine = 16 * 1024

// Writer serialises records from several streams into one log file.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
	buf []byte
}

// NewWriter returns a Writer that writes records to w. now is the clock;
// nil means time.Now.
func NewWriter(w io.Writer, now func() time.Time) *Writer {
	if now == nil {
		now = time.Now
	}
	return &Writer{w: w, now: now}
}

// SetOutput swaps the destination, for log reopening after rotation.
func (l *Writer) SetOutput(w io.Writer) {
	l.mu.Lock()
	l.w = w
	l.mu.Unlock()
}

// record writes one record in a single Write so that records of the two
// streams never interleave.
func (l *Writer) record(stream string, partial bool, line []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	tag := " F "
	if partial {
		tag = " P "
	}
	b := l.buf[:0]
	b = l.now().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, tag...)
	b = append(b, line...)
	b = append(b, '\n')
	l.buf = b
	if l.w == nil {
		return nil
	}
	_, err := l.w.Write(b)
	return err
}

// Copy reads src until EOF and writes each line as a record of stream
// ("stdout" or "stderr"). A trailing piece without a newline is written
// as a final record. Write errors do not stop the copy: the container must
// never block on a full disk, so output is dropped instead.
func (l *Writer) Copy(stream string, src io.Reader) error {
	r := bufio.NewReaderSize(src, MaxLine)
	for {
		line, err := r.ReadSlice('\n')
		switch {
		case err == nil:
			l.record(stream, false, line[:len(line)-1])
		case errors.Is(err, bufio.ErrBufferFull):
			l.record(stream, true, line)
		case len(line) > 0:
			l.record(stream, false, line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
