// Package jsonkeys keeps vitc's JSON keys in one style, snake_case, and
// lets files written before a struct had its json tags still be read: a
// key spelt as the Go field name (what encoding/json writes for an
// untagged field) is taken for the tagged one.
package jsonkeys

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// UnmarshalLegacy decodes data into v (a pointer to a struct) like
// json.Unmarshal, and also accepts, in v and in every struct nested in it,
// each field's Go name where its json tag names another key: what
// encoding/json wrote for the field before it had a tag. A type calls it
// from its UnmarshalJSON with a method-less copy of itself:
//
//	func (p *Plan) UnmarshalJSON(b []byte) error {
//		type plain Plan
//		return jsonkeys.UnmarshalLegacy(b, (*plain)(p))
//	}
//
// The tagged key wins where both are present. It works from the types, so
// nested structs need no UnmarshalJSON of their own (which a package on
// vitc's lowest floor could not give them).
func UnmarshalLegacy(data []byte, v any) error {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("jsonkeys: UnmarshalLegacy needs a pointer to a struct, not %v", t)
	}
	if fixed, ok := rename(data, t.Elem()); ok {
		data = fixed
	}
	return json.Unmarshal(data, v)
}

// rename rewrites the Go-named keys of raw, a JSON value of type t, to
// their tags, at every depth; ok says whether anything changed. A value
// that does not have the shape t's JSON has is left to json.Unmarshal to
// refuse.
func rename(raw json.RawMessage, t reflect.Type) (out json.RawMessage, ok bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	changed := false
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			return raw, false
		}
		for _, f := range fields(t) {
			v, has := obj[f.key]
			if !has && f.key != f.goName {
				if v, has = obj[f.goName]; has {
					delete(obj, f.goName)
					obj[f.key] = v
					changed = true
				}
			}
			if !has {
				continue
			}
			if nv, ok := rename(v, f.typ); ok {
				obj[f.key] = nv
				changed = true
			}
		}
		if changed {
			return marshal(raw, obj)
		}
	case reflect.Slice, reflect.Array:
		var elems []json.RawMessage
		if t.Elem().Kind() == reflect.Uint8 || json.Unmarshal(raw, &elems) != nil {
			return raw, false // []byte is a string in JSON
		}
		for i, e := range elems {
			if ne, ok := rename(e, t.Elem()); ok {
				elems[i] = ne
				changed = true
			}
		}
		if changed {
			return marshal(raw, elems)
		}
	case reflect.Map:
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return raw, false
		}
		for k, e := range m {
			if ne, ok := rename(e, t.Elem()); ok {
				m[k] = ne
				changed = true
			}
		}
		if changed {
			return marshal(raw, m)
		}
	}
	return raw, false
}

// marshal re-encodes a rewritten value; the parts came from parsing, so
// it does not fail, but if it did the original raw would still decode.
func marshal(raw json.RawMessage, v any) (json.RawMessage, bool) {
	b, err := json.Marshal(v)
	if err != nil {
		return raw, false
	}
	return b, true
}

type field struct {
	goName, key string
	typ         reflect.Type
	tagged      bool
}

// fields lists the JSON fields of struct type t as encoding/json sees
// them: exported, not "-", untagged embedded structs flattened.
func fields(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := sf.Type
		if sf.Anonymous && name == "" {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				out = append(out, fields(et)...)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		f := field{goName: sf.Name, key: name, typ: ft, tagged: name != ""}
		if name == "" {
			f.key = sf.Name
		}
		out = append(out, f)
	}
	return out
}

var snake = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

var (
	marshaler = reflect.TypeFor[json.Marshaler]()
	duration  = reflect.TypeFor[time.Duration]()
)

// foreign is a type from outside vitc that marshals itself.
func foreign(t reflect.Type) bool {
	own := t.PkgPath() == "vitc" || strings.HasPrefix(t.PkgPath(), "vitc/")
	return !own && (t.Implements(marshaler) || reflect.PointerTo(t).Implements(marshaler))
}

// Check lists what in the JSON form of type t breaks the project's style:
// a key that is not snake_case (an untagged field's Go name included) and
// a time.Duration, which encoding/json writes in nanoseconds (vitc writes
// seconds, under a key ending in _s). It looks through pointers, slices,
// arrays, map values and nested structs, vitc's own ones even where they
// have a MarshalJSON (which usually adds to the fields rather than
// replacing them); other modules' types with a MarshalJSON (time.Time)
// speak for themselves.
func Check(t reflect.Type) []string {
	var out []string
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] || foreign(t) {
			return
		}
		seen[t] = true
		for _, f := range fields(t) {
			where := fmt.Sprintf("%s.%s (%s)", path, f.goName, t)
			switch {
			case !f.tagged:
				out = append(out, where+": no json tag, written as "+f.goName)
			case !snake.MatchString(f.key):
				out = append(out, fmt.Sprintf("%s: key %q is not snake_case", where, f.key))
			}
			if f.typ == duration {
				out = append(out, where+": a time.Duration is written in nanoseconds; write seconds")
			}
			walk(f.typ, path+"."+f.key)
		}
	}
	walk(t, t.String())
	return out
}
