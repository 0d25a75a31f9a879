// Package image is the CRI runtime's on-disk image store: it imports image
// archives (OCI image-layout tarballs and `docker save` tarballs) for
// air-gapped nodes, accepts images fetched by a puller, resolves the many
// ways users name an image, unpacks layers once and mounts a container's
// root file system as an overlay of them.
//
// # On-disk layout
//
//	<root>/images/<hex>.json   one versioned record per image (<hex> of its ID)
//	<root>/layers/<hex>/       one unpacked layer per diff ID, shared by images
//	<root>/tmp/                work in progress; wiped by Open
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
// Everything becomes visible by a rename: a layer is unpacked into <root>/tmp
// and renamed into layers/ only when complete and verified against its diff
// ID; a record is written with atomicfile after all its layers exist.
// Deletion goes the other way: a record is removed before the layers it
// referenced, and doomed layer directories are renamed into tmp/ before they
// are deleted. So after a crash the store holds at worst unreferenced layers
// (removed by Prune) and leftovers in tmp/ (removed by Open), never a record
// pointing at a half-written layer.
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
