package shim

import (
	"bufio"
	"fmt"
	"io"
)

// appendFrame appends one frame to b.
func appendFrame(b []byte, typ byte, payload []byte) []byte {
	n := len(payload)
	b = append(b, typ, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(b, payload...)
}

// writeFrame writes one frame in a single Write.
func writeFrame(w io.Writer, typ byte, payload []byte) error {
	_, err := w.Write(appendFrame(make([]byte, 0, 5+len(payload)), typ, payload))
	return err
}

// readFrame reads the next frame into buf (grown when too small) and
// returns its type and payload; the payload is valid until the next call
// with the same buf.
func readFrame(r *bufio.Reader, buf []byte) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(hdr[1])<<24 | int(hdr[2])<<16 | int(hdr[3])<<8 | int(hdr[4])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes is larger than %d", n, maxFrame)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return hdr[0], buf, nil
}

// be16 and be32 encode the small integers frames carry.
func be16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

func be32(v int32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

func parse16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

func parse32(b []byte) int32 {
	return int32(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
}
