package bencode

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
)

// Marshaler is implemented by types that encode themselves as one raw value.
type Marshaler interface {
	MarshalBencode() ([]byte, error)
}

var marshalerType = reflect.TypeFor[Marshaler]()

// Marshal encodes v canonically: dictionary keys sorted, integers plain.
// Supported: integers, bool (as 0/1), string, []byte, byte arrays, slices,
// maps with string keys, structs (field tag `bencode:"name,omitempty"`),
// pointers, RawMessage (written as is) and Marshaler.
func Marshal(v any) ([]byte, error) {
	return AppendMarshal(nil, v)
}

// AppendMarshal appends the encoding of v to dst.
func AppendMarshal(dst []byte, v any) ([]byte, error) {
	return appendValue(dst, reflect.ValueOf(v))
}

// MustMarshal is Marshal for values known to be encodable (fixed message
// structs); it panics on a programming error.
func MustMarshal(v any) []byte {
	b, err := Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func appendString(dst []byte, s string) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	return append(dst, s...)
}

func appendBytes(dst, b []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, ':')
	return append(dst, b...)
}

func appendValue(dst []byte, v reflect.Value) ([]byte, error) {
	if !v.IsValid() {
		return nil, fmt.Errorf("bencode: cannot encode nil")
	}
	if v.Type() == rawType {
		if v.Len() == 0 {
			return nil, fmt.Errorf("bencode: empty RawMessage")
		}
		return append(dst, v.Bytes()...), nil
	}
	if v.Type().Implements(marshalerType) {
		if v.Kind() == reflect.Pointer && v.IsNil() {
			return nil, fmt.Errorf("bencode: nil %s", v.Type())
		}
		b, err := v.Interface().(Marshaler).MarshalBencode()
		if err != nil {
			return nil, err
		}
		return append(dst, b...), nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil, fmt.Errorf("bencode: cannot encode nil %s", v.Type())
		}
		return appendValue(dst, v.Elem())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		dst = append(dst, 'i')
		dst = strconv.AppendInt(dst, v.Int(), 10)
		return append(dst, 'e'), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		dst = append(dst, 'i')
		dst = strconv.AppendUint(dst, v.Uint(), 10)
		return append(dst, 'e'), nil
	case reflect.Bool:
		if v.Bool() {
			return append(dst, "i1e"...), nil
		}
		return append(dst, "i0e"...), nil
	case reflect.String:
		return appendString(dst, v.String()), nil
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return appendBytes(dst, v.Bytes()), nil
		}
		fallthrough
	case reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(b), v)
			return appendBytes(dst, b), nil
		}
		dst = append(dst, 'l')
		for i := 0; i < v.Len(); i++ {
			var err error
			if dst, err = appendValue(dst, v.Index(i)); err != nil {
				return nil, err
			}
		}
		return append(dst, 'e'), nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("bencode: map key type %s is not a string", v.Type().Key())
		}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		slices.Sort(keys)
		dst = append(dst, 'd')
		for _, k := range keys {
			ev := v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key()))
			if isNilValue(ev) {
				continue
			}
			dst = appendString(dst, k)
			var err error
			if dst, err = appendValue(dst, ev); err != nil {
				return nil, err
			}
		}
		return append(dst, 'e'), nil
	case reflect.Struct:
		fields := cachedFields(v.Type())
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, 'd')
		for _, k := range keys {
			f := fields[k]
			fv := v.FieldByIndex(f.index)
			if isNilValue(fv) || (f.omitEmpty && fv.IsZero()) {
				continue
			}
			if f.omitEmpty && (fv.Kind() == reflect.Slice || fv.Kind() == reflect.Map) && fv.Len() == 0 {
				continue
			}
			dst = appendString(dst, k)
			var err error
			if dst, err = appendValue(dst, fv); err != nil {
				return nil, fmt.Errorf("field %q: %w", k, err)
			}
		}
		return append(dst, 'e'), nil
	}
	return nil, fmt.Errorf("bencode: cannot encode %s", v.Type())
}

func isNilValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map:
		return v.IsNil()
	case reflect.Slice:
		// a nil RawMessage means "absent"; a nil []byte is an empty string
		return v.IsNil() && v.Type() == rawType
	}
	return false
}
