package store

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/berth-project/berth/cri/atomicfile"
	"github.com/berth-project/berth/cri/shim"
)

// Version is the on-disk format version written into every meta file.
const Version = 1

const (
	metaFile   = "meta.json"
	statusFile = "status.json"
	// ExitFile is the name of the file the shim writes on exit.
	ExitFile = "exit.json"
)

// protoJSON wraps a CRI message so it is stored in its canonical JSON form.
type protoJSON[T proto.Message] struct{ Msg T }

func (p protoJSON[T]) MarshalJSON() ([]byte, error) { return protojson.Marshal(p.Msg) }

func (p *protoJSON[T]) UnmarshalJSON(b []byte) error {
	msg := p.Msg.ProtoReflect().New().Interface().(T)
	if err := protojson.Unmarshal(b, msg); err != nil {
		return err
	}
	p.Msg = msg
	return nil
}

// writeRecord writes meta (when non-nil) and status into dir.
func writeRecord(dir string, meta, status any) error {
	if meta != nil {
		if err := atomicfile.WriteJSON(filepath.Join(dir, metaFile), meta); err != nil {
			return err
		}
	}
	return atomicfile.WriteJSON(filepath.Join(dir, statusFile), status)
}

// readRecord reads meta and status from dir; complete is false when the
// status file is missing (creation never finished).
func readRecord(dir string, meta, status any) (complete bool, err error) {
	if err := atomicfile.ReadJSON(filepath.Join(dir, metaFile), meta); err != nil {
		if os.IsNotExist(err) {
			return false, nil
		}
		return false, err
	}
	if err := atomicfile.ReadJSON(filepath.Join(dir, statusFile), status); err != nil {
		if os.IsNotExist(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// readExit reads the shim's exit record in dir, if there is one.
func readExit(dir string) (*shim.Exit, error) {
	data, err := os.ReadFile(filepath.Join(dir, ExitFile))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var e shim.Exit
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, ExitFile), err)
	}
	return &e, nil
}
