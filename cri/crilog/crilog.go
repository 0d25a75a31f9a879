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
	"bytes"
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

// appendRecord appends one record to b.
func appendRecord(b []byte, at []byte, stream string, partial bool, line []byte) []byte {
	tag := " F "
	if partial {
		tag = " P "
	}
	b = append(b, at...)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, tag...)
	b = append(b, line...)
	return append(b, '\n')
}

// write writes records (whole ones, one or more) in a single Write so
// that records of the two streams never interleave and a log file never
// ends in the middle of one.
func (l *Writer) write(records []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return nil
	}
	_, err := l.w.Write(records)
	return err
}

// Copy reads src until EOF and writes each line as a record of stream
// ("stdout" or "stderr"). A trailing piece without a newline is written
// as a final record. The lines already read when one is taken are written
// with it, in one Write and with one time (they arrived together): a
// container writing as fast as it can costs a write per buffer, not per
// line. Write errors do not stop the copy: the container must never block
// on a full disk, so output is dropped instead.
func (l *Writer) Copy(stream string, src io.Reader) error {
	r := bufio.NewReaderSize(src, MaxLine)
	var batch, stamp []byte
	partial := false // the last record was P: only an F record ends its line
	for {
		line, err := r.ReadSlice('\n')
		stamp = l.now().UTC().AppendFormat(stamp[:0], time.RFC3339Nano)
		batch = batch[:0]
		for {
			switch {
			case err == nil:
				batch = appendRecord(batch, stamp, stream, false, line[:len(line)-1])
			case errors.Is(err, bufio.ErrBufferFull):
				batch = appendRecord(batch, stamp, stream, true, line)
			case len(line) > 0 || partial:
				// A trailing piece, or the end of a line that filled the
				// buffer exactly: the last record must be final.
				batch = appendRecord(batch, stamp, stream, false, line)
			}
			partial = errors.Is(err, bufio.ErrBufferFull)
			// More whole lines already buffered go in the same write.
			if err != nil || r.Buffered() == 0 || !bytes.Contains(peekAll(r), []byte{'\n'}) {
				break
			}
			line, err = r.ReadSlice('\n')
		}
		if len(batch) > 0 {
			l.write(batch)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// peekAll is what r holds without reading more.
func peekAll(r *bufio.Reader) []byte {
	b, _ := r.Peek(r.Buffered())
	return b
}
