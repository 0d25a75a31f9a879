// Package manifest reads static pod manifests: the Pod files an operator
// drops into berth's manifest directory (kubelet's --pod-manifest-path).
// It turns each file into defaulted, validated *v1.Pod values, or into
// an error that names the file, the document and the field.
//
// # From file to pod
//
//  1. Read (ReadFile): only a regular file of at most MaxFileSize bytes
//     is read; a symlink only when it leads to a file inside the
//     manifest directory. A fifo is never opened for reading, so a stray
//     one cannot block the agent.
//  2. Split and decode (Parse): a file holds one or more YAML (or JSON)
//     documents separated by "---" lines; empty documents are skipped.
//     Each must be apiVersion v1, kind Pod. Decoding is strict, as the
//     API server's is: unknown or duplicate fields, values of the wrong
//     type and bad quantities are errors with their full field path, and
//     syntax errors give the line of the file.
//  3. Default (defaults.go): the fields the API server fills in on create,
//     so the rest of berth reads a pod exactly as it would read one from
//     a cluster.
//  4. Validate (validate*.go): what the API server would refuse, plus
//     what a static pod cannot have (references to secrets, config maps
//     and other API objects: there is no API server to read them from)
//     and what berth does not support (volume sources other than
//     emptyDir, hostPath and downwardAPI). Every problem is reported,
//     not only the first.
//  5. Name (static.go): as kubelet names pods from files, the node name is
//     appended to the pod name, spec.nodeName is set, and the UID and the
//     kubernetes.io/config.hash annotation are a hash of the defaulted
//     pod and the node name: an unchanged file gives the same UID across
//     restarts, any edit a new one.
//
// A file is all or nothing: one bad document refuses the whole file, and
// ReadDir refuses a later file (in name order) that defines a pod an
// earlier one already does. A bad file never affects the others.
//
// # Differences from kubelet, on purpose
//
//   - A metadata.uid in the file is overwritten: the UID always follows
//     the content.
//   - The NoExecute toleration kubelet adds to static pods is not added:
//     it matters only to a cluster's taint manager, for mirror pods.
package manifest
