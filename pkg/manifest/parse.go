package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Parse decodes, defaults, validates and names the pods in data; name is
// used in error messages (the file path). Any error refuses the whole
// data: it returns every problem found, one per line, each starting with
// name (and the document number when data holds several documents).
func Parse(name string, data []byte, nodeName string) ([]*v1.Pod, error) {
	return parse(name, data, nodeName, fromFile)
}

// ParseURL is Parse for what a manifest URL served (kubelet's
// staticPodURL): besides Pods, a document may be a v1 PodList, and the
// pods are annotated as coming from "http".
func ParseURL(url string, data []byte, nodeName string) ([]*v1.Pod, error) {
	return parse(url, data, nodeName, fromURL)
}

// origin is where pods are read from.
type origin struct {
	source string // the SourceAnnotation value
	lists  bool   // PodList documents are accepted
	empty  string // the error when there is no pod at all
}

var (
	fromFile = origin{source: FileSource, empty: "no pod in file"}
	fromURL  = origin{source: HTTPSource, lists: true, empty: "no pod in the answer (an empty PodList removes them all)"}
)

func parse(name string, data []byte, nodeName string, from origin) ([]*v1.Pod, error) {
	docs := documents(data)
	if from.lists {
		var lists int
		docs, lists = expandLists(docs)
		if len(docs) == 0 && lists > 0 {
			return nil, nil // an empty PodList says: no pods
		}
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: %s", name, from.empty)
	}
	var (
		pods []*v1.Pod
		errs []error
		seen = map[string]int{} // namespace/name → document number
	)
	for i, d := range docs {
		prefix := name + ": "
		if len(docs) > 1 {
			prefix = fmt.Sprintf("%s: document %d: ", name, i+1)
		}
		if d.where != "" {
			prefix = name + ": " + d.where + ": "
		}
		pod, docErrs := d.pod(nodeName, from.source)
		if pod != nil {
			key := pod.Namespace + "/" + pod.Name
			if first, ok := seen[key]; ok {
				docErrs = append(docErrs, fmt.Errorf("pod %s is already defined in %s", key, docs[first].name(first)))
			}
			seen[key] = i
		}
		for _, err := range docErrs {
			// One problem a line: a key the file spells with a newline
			// must not start a line of its own.
			errs = append(errs, fmt.Errorf("%s%s", prefix, strings.ReplaceAll(err.Error(), "\n", `\n`)))
		}
		pods = append(pods, pod)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return pods, nil
}

// document is one non-empty YAML (or JSON) document of a file, or one
// item of a PodList document.
type document struct {
	json  []byte // the document converted to JSON, when err is nil
	err   error  // a syntax error, with line numbers of the file
	where string // "document 2: items[3]" for an item of a list
}

// name is how errors refer to the document, the i-th of its file.
func (d document) name(i int) string {
	if d.where != "" {
		return d.where
	}
	return fmt.Sprintf("document %d", i+1)
}

// pod turns the document into a named static pod, or says why it cannot.
func (d document) pod(nodeName, source string) (*v1.Pod, []error) {
	if d.err != nil {
		return nil, []error{d.err}
	}
	pod, errs := decodePod(d.json)
	if len(errs) > 0 {
		return nil, errs
	}
	setDefaults(pod)
	if list := validatePod(pod, nodeName); len(list) > 0 {
		errs := make([]error, len(list))
		for i, e := range list {
			errs[i] = e
		}
		return nil, errs
	}
	if err := makeStatic(pod, nodeName, source); err != nil {
		return nil, []error{err}
	}
	return pod, nil
}

// documents splits data into its YAML documents and converts each to
// JSON, leaving out the empty ones (only blanks and comments), which a
// file may hold before its first separator or after its last.
func documents(data []byte) []document {
	var docs []document
	for _, part := range splitDocuments(data) {
		j, err := yaml.YAMLToJSONStrict(part.data)
		switch {
		case err != nil:
			docs = append(docs, document{err: syntaxError(err, part.line)})
		case !bytes.Equal(j, []byte("null")):
			docs = append(docs, document{json: j})
		}
	}
	return docs
}

// expandLists replaces each v1 PodList document by its items, which are
// Pods (an item without apiVersion and kind, as the API server lists
// them, is taken as a v1 Pod). It also counts the lists.
func expandLists(docs []document) ([]document, int) {
	var out []document
	lists := 0
	for i, d := range docs {
		var list struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Items      []json.RawMessage `json:"items"`
		}
		if d.err != nil || json.Unmarshal(d.json, &list) != nil || list.Kind != "PodList" || list.APIVersion != "v1" {
			out = append(out, d)
			continue
		}
		lists++
		prefix := ""
		if len(docs) > 1 {
			prefix = fmt.Sprintf("document %d: ", i+1)
		}
		for j, item := range list.Items {
			out = append(out, document{json: withPodKind(item), where: fmt.Sprintf("%sitems[%d]", prefix, j)})
		}
	}
	return out, lists
}

// withPodKind adds apiVersion v1 and kind Pod to an item that has
// neither.
func withPodKind(item []byte) []byte {
	var obj map[string]json.RawMessage
	if json.Unmarshal(item, &obj) != nil {
		return item // decodePod says what is wrong with it
	}
	if _, ok := obj["kind"]; ok {
		return item
	}
	if _, ok := obj["apiVersion"]; ok {
		return item
	}
	obj["kind"], obj["apiVersion"] = json.RawMessage(`"Pod"`), json.RawMessage(`"v1"`)
	out, err := json.Marshal(obj)
	if err != nil {
		return item
	}
	return out
}

// documentText is a document as written, and the line of the file it
// starts on, from 1.
type documentText struct {
	line int
	data []byte
}

// splitDocuments cuts data at its "---" separator lines. The YAML
// decoder counts lines from the start of each document it is given, so
// the line each document starts on is kept to report lines of the file.
func splitDocuments(data []byte) []documentText {
	var docs []documentText
	start, startLine, line := 0, 1, 1
	for off := 0; off < len(data); line++ {
		next := len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			next = off + i + 1
		}
		if isSeparator(data[off:next]) {
			docs = append(docs, documentText{line: startLine, data: data[start:off]})
			start, startLine = next, line+1
		}
		off = next
	}
	return append(docs, documentText{line: startLine, data: data[start:]})
}

// isSeparator accepts "---" alone on its line or followed by a comment,
// as kubectl does; "--- key: value" is left to the YAML decoder.
func isSeparator(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("---"))
	if !ok {
		return false
	}
	rest = bytes.TrimSpace(rest)
	return len(rest) == 0 || rest[0] == '#'
}

var yamlLine = regexp.MustCompile(`(^|\n\s*)line (\d+)`)

// syntaxError rewrites a YAML decoder error for a document starting on
// line first of the file: its line numbers become lines of the file and
// its several lines (duplicate keys) become one.
func syntaxError(err error, first int) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = yamlLine.ReplaceAllStringFunc(msg, func(m string) string {
		sub := yamlLine.FindStringSubmatch(m)
		n, _ := strconv.Atoi(sub[2]) // the pattern matched digits only
		return fmt.Sprintf("%sline %d", sub[1], n+first-1)
	})
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	lines := strings.Split(msg, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return errors.New(strings.Join(lines, "; "))
}
