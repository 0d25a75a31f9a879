// Package image is the CRI runtime's on-disk image store: it pulls images
// from registries (through mirrors, with credentials, over TLS or, where
// configured, plain HTTP), imports image archives (OCI image-layout
// tarballs and `docker save` tarballs) for air-gapped nodes and exports
// them again, builds the builtin pause image, resolves the many ways users
// name an image, unpacks layers once and mounts a container's root file
// system as an overlay of them.
//
// A newcomer reads store.go (the Store and its recovery), then pull.go and
// ingest.go (how any image — pulled, imported, built — is stored), then
// gc.go (what is deleted when).
//
// # On-disk layout
//
//	<root>/images/<hex>.json      one versioned record per image (<hex> of its ID)
//	<root>/blobs/sha256/<hex>     the blobs as shipped: manifests, indexes, configs, compressed layers
//	<root>/layers/<hex>/          one unpacked layer per diff ID, shared by images
//	<root>/tmp/                   work in progress; wiped by Open
//
// An image's ID is the sha256 digest of its config blob, as in containerd and
// Docker, so the same image imported twice is one record. Layers are keyed
// by diff ID (the digest of the uncompressed tar) rather than by chain ID:
// each layer is unpacked on its own and its OCI whiteouts are converted to
// overlayfs whiteouts, so the result does not depend on the layers below and
// one directory serves every image that shares the layer.
//
// # Crash safety
//
// Everything becomes visible by a rename: a blob is downloaded into
// <root>/tmp, fsynced and renamed into blobs/ only when its content hashes
// to its digest; a layer is unpacked from its stored blob into <root>/tmp
// and renamed into layers/ only when complete and verified against its
// diff ID; a record is written with atomicfile after all its blobs and
// layers exist. Deletion goes the other way: a record is removed before
// the blobs and layers it referenced, and doomed ones are renamed into
// tmp/ before they are deleted. So after a crash the store holds at worst
// unreferenced blobs and layers (removed by Prune) and leftovers in tmp/
// (removed by Open), never a record pointing at a half-written layer.
//
// Blobs and layers are reference-counted by the records that list them
// (record.Blobs, Image.DiffIDs) plus the holds of pulls, imports and
// exports under way; Remove and Prune delete what nothing counts. A pull
// or import that fails deletes what it added itself.
//
// # Names
//
// Tags are normalised the way containerd's CRI plugin does it
// ("busybox" → "docker.io/library/busybox:latest"); see NormalizeRef. A tag
// names at most one image: importing an image under a tag that another image
// holds moves the tag, and the other image stays listed by ID (a "dangling"
// image, as in Docker) until it is removed.
//
// # Security
//
// Archives and layers are untrusted input. Extraction never writes outside
// its target directory: entries with ".." are rejected, absolute names are
// taken relative to the target, an entry whose parent path goes through a
// symlink is rejected, hard links must point at files already extracted
// inside the target, and overlayfs xattrs carried by a layer are dropped
// (only the store itself sets trusted.overlay.opaque).
package image
