// Package store holds the runtime's records of pod sandboxes and
// containers, in memory and on disk.
//
// On-disk format (version 1), under berthd's --root:
//
//	sandboxes/<id>/meta.json    immutable: the CRI config and what was set up for it
//	sandboxes/<id>/status.json  mutable: state, pause pid, shim, IPs
//	sandboxes/<id>/exit.json    written once by the shim when the pause process exits
//	containers/<id>/meta.json   immutable: the CRI config, image, log path
//	containers/<id>/status.json mutable: state, pid, times, exit code, reason
//	containers/<id>/exit.json   written once by the shim when the container exits
//
// Every file is written atomically (temp file, fsync, rename). A record
// without a status file was never completely created and is cleaned up on
// recovery. Exit files are the shim's and are never written by berthd: a
// container's true state is its status file overridden by its exit file.
package store
