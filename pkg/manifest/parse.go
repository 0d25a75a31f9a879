package manifest

import (
	"bytes"
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
	docs := documents(data)
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no pod in file", name)
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
		pod, docErrs := d.pod(nodeName)
		if pod != nil {
			key := pod.Namespace + "/" + pod.Name
			if first, ok := seen[key]; ok {
				docErrs = append(docErrs, fmt.Errorf("pod %s is already defined in document %d", key, first))
			}
			seen[key] = i + 1
		}
		for _, err := range docErrs {
			errs = append(errs, fmt.Errorf("%s%w", prefix, err))
		}
		pods = append(pods, pod)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return pods, nil
}

// document is one non-empty YAML (or JSON) document of a file.
type document struct {
	json []byte // the document converted to JSON, when err is nil
	err  error  // a syntax error, with line numbers of the file
}

// pod turns the document into a named static pod, or says why it cannot.
func (d document) pod(nodeName string) (*v1.Pod, []error) {
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
	if err := makeStatic(pod, nodeName); err != nil {
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
