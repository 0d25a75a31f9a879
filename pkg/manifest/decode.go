package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// decodePod decodes one document, already converted to JSON, into a Pod.
//
// encoding/json is more lenient than the API server: it matches field
// names without regard to case, ignores unknown fields, and reports type
// errors without list indices and a quantity it cannot parse without any
// path at all. So the document is first checked against the Pod type
// field by field (checkValue), which names the full path of every
// problem, and decoded only once it fits.
func decodePod(data []byte) (*v1.Pod, []error) {
	var obj any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, []error{fmt.Errorf("decode: %w", err)}
	}
	m, ok := obj.(map[string]any)
	if !ok {
		return nil, []error{errors.New("the document is not a mapping (want a Pod object)")}
	}
	if err := checkKind(m); err != nil {
		return nil, []error{err}
	}
	if errs := checkValue(nil, m, reflect.TypeFor[v1.Pod]()); len(errs) > 0 {
		return nil, errs
	}
	pod := &v1.Pod{}
	if err := json.Unmarshal(data, pod); err != nil {
		return nil, []error{fmt.Errorf("decode pod: %w", err)}
	}
	return pod, nil
}

// checkKind refuses anything but a v1 Pod before its fields are checked,
// which would only say that a Deployment's fields are unknown to a Pod.
func checkKind(obj map[string]any) error {
	if kind := obj["kind"]; kind != "Pod" {
		return fmt.Errorf("%s, want \"Pod\" (apiVersion v1)", found("kind", kind))
	}
	if version := obj["apiVersion"]; version != "v1" {
		return fmt.Errorf("%s, want \"v1\" (kind Pod)", found("apiVersion", version))
	}
	return nil
}

func found(name string, value any) string {
	if value == nil {
		return "no " + name
	}
	return fmt.Sprintf("%s %q", name, fmt.Sprint(value))
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkValue reports where value, as decoded by encoding/json into an
// any, does not fit type t: unknown fields (names are case-sensitive, as
// in the API server), values of the wrong JSON type, and values a type's
// own decoder refuses (quantities, int-or-string ports, times).
func checkValue(fld *field.Path, value any, t reflect.Type) []error {
	if value == nil {
		return nil // null leaves the zero value
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return checkLeaf(fld, value, t)
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := value.(map[string]any)
		if !ok {
			return checkLeaf(fld, value, t)
		}
		fields := jsonFields(t)
		var errs []error
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			ft, ok := fields[key]
			if !ok {
				errs = append(errs, unknownField(fld.Child(key), key, fields))
				continue
			}
			errs = append(errs, checkValue(fld.Child(key), obj[key], ft)...)
		}
		return errs
	case reflect.Map:
		obj, ok := value.(map[string]any)
		if !ok {
			return checkLeaf(fld, value, t)
		}
		var errs []error
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			errs = append(errs, checkValue(fld.Key(key), obj[key], t.Elem())...)
		}
		return errs
	case reflect.Slice:
		list, ok := value.([]any)
		if !ok || t.Elem().Kind() == reflect.Uint8 { // []byte is base64 text
			return checkLeaf(fld, value, t)
		}
		var errs []error
		for i, item := range list {
			errs = append(errs, checkValue(fld.Index(i), item, t.Elem())...)
		}
		return errs
	}
	return checkLeaf(fld, value, t)
}

// checkLeaf decodes value into a new t, as encoding/json will.
func checkLeaf(fld *field.Path, value any, t reflect.Type) []error {
	data, err := json.Marshal(value)
	if err != nil {
		return []error{field.InternalError(fld, err)}
	}
	err = json.Unmarshal(data, reflect.New(t).Interface())
	if err == nil {
		return nil
	}
	shown := value
	if _, ok := value.(map[string]any); ok {
		shown = field.OmitValueType{}
	} else if _, ok := value.([]any); ok {
		shown = field.OmitValueType{}
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return []error{field.Invalid(fld, shown, "must be "+describe(t))}
	}
	return []error{field.Invalid(fld, shown, strings.TrimPrefix(err.Error(), "json: "))}
}

func describe(t reflect.Type) string {
	if t == reflect.TypeFor[intstr.IntOrString]() {
		return "an integer or a string"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("a %d-bit integer", t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("a %d-bit unsigned integer", t.Bits())
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return t.String()
}

func unknownField(fld *field.Path, key string, fields map[string]reflect.Type) error {
	for known := range fields {
		if strings.EqualFold(known, key) {
			return fmt.Errorf("%s: unknown field (did you mean %q?)", fld, known)
		}
	}
	return fmt.Errorf("%s: unknown field", fld)
}

// jsonFields maps the JSON names of t's fields to their types, with the
// fields of embedded structs (TypeMeta, ProbeHandler) promoted, as
// encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		name := jsonName(f)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case name == "-":
		case f.Anonymous && name == "" && ft.Kind() == reflect.Struct:
			for k, v := range jsonFields(ft) {
				if _, ok := fields[k]; !ok { // a field of t itself wins
					fields[k] = v
				}
			}
		case f.IsExported():
			if name == "" {
				name = f.Name
			}
			fields[name] = f.Type
		}
	}
	return fields
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}
