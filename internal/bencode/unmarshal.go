package bencode

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// RawMessage is a raw encoded value; it delays decoding or keeps exact bytes
// (the info dictionary, whose bytes define the info-hash).
type RawMessage []byte

// Unmarshaler is implemented by types that decode themselves from one raw value.
type Unmarshaler interface {
	UnmarshalBencode([]byte) error
}

// Unmarshal decodes exactly one value from data into v (a non-nil pointer)
// using DefaultLimits. Trailing bytes are an error.
func Unmarshal(data []byte, v any) error {
	return UnmarshalLimits(data, v, DefaultLimits)
}

// UnmarshalLimits is Unmarshal with explicit limits.
func UnmarshalLimits(data []byte, v any, lim Limits) error {
	n, err := unmarshalPrefix(data, v, lim)
	if err != nil {
		return err
	}
	if n != len(data) {
		return fmt.Errorf("%w (%d bytes)", ErrTrailing, len(data)-n)
	}
	return nil
}

// UnmarshalPrefix decodes the first value in data and returns how many bytes
// it used; what follows is left to the caller (ut_metadata data messages
// carry raw bytes after a dictionary).
func UnmarshalPrefix(data []byte, v any, lim Limits) (int, error) {
	return unmarshalPrefix(data, v, lim)
}

func unmarshalPrefix(data []byte, v any, lim Limits) (int, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return 0, fmt.Errorf("bencode: Unmarshal needs a non-nil pointer, got %T", v)
	}
	s := newScanner(data, lim)
	if err := s.decode(rv.Elem(), 0); err != nil {
		return 0, err
	}
	return s.pos, nil
}

var (
	rawType         = reflect.TypeFor[RawMessage]()
	unmarshalerType = reflect.TypeFor[Unmarshaler]()
	bytesType       = reflect.TypeFor[[]byte]()
)

func (s *scanner) decode(v reflect.Value, depth int) error {
	if v.Type() == rawType {
		start := s.pos
		if err := s.skip(depth); err != nil {
			return err
		}
		v.SetBytes(append([]byte(nil), s.data[start:s.pos]...))
		return nil
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		start := s.pos
		if err := s.skip(depth); err != nil {
			return err
		}
		return v.Addr().Interface().(Unmarshaler).UnmarshalBencode(s.data[start:s.pos])
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return s.decode(v.Elem(), depth)
	}
	c, err := s.peek()
	if err != nil {
		return err
	}
	switch {
	case c == 'i':
		return s.decodeInt(v)
	case c >= '0' && c <= '9':
		return s.decodeString(v)
	case c == 'l':
		return s.decodeList(v, depth)
	case c == 'd':
		return s.decodeDict(v, depth)
	}
	return s.errf("invalid value type byte %q", c)
}

func (s *scanner) typeErr(what string, v reflect.Value) error {
	return s.errf("cannot decode %s into Go value of type %s", what, v.Type())
}

func (s *scanner) decodeInt(v reflect.Value) error {
	at := s.pos
	n, err := s.readInt()
	if err != nil {
		return err
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.OverflowInt(n) {
			s.pos = at
			return s.errf("integer %d overflows %s", n, v.Type())
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n < 0 || v.OverflowUint(uint64(n)) {
			s.pos = at
			return s.errf("integer %d out of range for %s", n, v.Type())
		}
		v.SetUint(uint64(n))
	case reflect.Bool:
		v.SetBool(n != 0)
	case reflect.Interface:
		if v.NumMethod() != 0 {
			return s.typeErr("integer", v)
		}
		v.Set(reflect.ValueOf(n))
	default:
		s.pos = at
		return s.typeErr("integer", v)
	}
	return nil
}

func (s *scanner) decodeString(v reflect.Value) error {
	at := s.pos
	b, err := s.readString()
	if err != nil {
		return err
	}
	switch {
	case v.Kind() == reflect.String:
		v.SetString(string(b))
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8:
		v.SetBytes(append([]byte(nil), b...))
	case v.Kind() == reflect.Array && v.Type().Elem().Kind() == reflect.Uint8:
		if len(b) != v.Len() {
			s.pos = at
			return s.errf("string of %d bytes for a %d-byte array", len(b), v.Len())
		}
		reflect.Copy(v, reflect.ValueOf(b))
	case v.Kind() == reflect.Interface && v.NumMethod() == 0:
		v.Set(reflect.ValueOf(string(b)))
	default:
		s.pos = at
		return s.typeErr("string", v)
	}
	return nil
}

func (s *scanner) enter(depth int) error {
	if depth >= s.lim.MaxDepth {
		return s.errf("nesting deeper than %d", s.lim.MaxDepth)
	}
	if err := s.count(); err != nil {
		return err
	}
	s.pos++
	return nil
}

func (s *scanner) decodeList(v reflect.Value, depth int) error {
	switch v.Kind() {
	case reflect.Slice:
	case reflect.Interface:
		if v.NumMethod() != 0 {
			return s.typeErr("list", v)
		}
		var l []any
		lv := reflect.ValueOf(&l).Elem()
		if err := s.decodeList(lv, depth); err != nil {
			return err
		}
		if l == nil {
			l = []any{}
		}
		v.Set(reflect.ValueOf(l))
		return nil
	default:
		return s.typeErr("list", v)
	}
	if err := s.enter(depth); err != nil {
		return err
	}
	v.SetLen(0)
	for i := 0; ; i++ {
		c, err := s.peek()
		if err != nil {
			return err
		}
		if c == 'e' {
			s.pos++
			if v.IsNil() {
				v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			}
			return nil
		}
		// grow one at a time: the number of elements is bounded by the input
		// size and MaxItems, never by a length read from the input.
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
		if err := s.decode(v.Index(i), depth+1); err != nil {
			return err
		}
	}
}

func (s *scanner) decodeDict(v reflect.Value, depth int) error {
	var fields map[string]fieldInfo
	switch v.Kind() {
	case reflect.Struct:
		fields = cachedFields(v.Type())
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return s.typeErr("dictionary", v)
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
	case reflect.Interface:
		if v.NumMethod() != 0 {
			return s.typeErr("dictionary", v)
		}
		m := map[string]any{}
		if err := s.decodeDict(reflect.ValueOf(&m).Elem(), depth); err != nil {
			return err
		}
		v.Set(reflect.ValueOf(m))
		return nil
	default:
		return s.typeErr("dictionary", v)
	}
	if err := s.enter(depth); err != nil {
		return err
	}
	var prev []byte
	first := true
	for {
		c, err := s.peek()
		if err != nil {
			return err
		}
		if c == 'e' {
			s.pos++
			return nil
		}
		if c < '0' || c > '9' {
			return s.errf("dictionary key is not a string")
		}
		k, err := s.readString()
		if err != nil {
			return err
		}
		if !first && string(k) <= string(prev) {
			if string(k) == string(prev) {
				return s.errf("duplicate dictionary key %q", k)
			}
			if !s.lim.Lenient {
				return s.errf("dictionary keys not sorted (%q after %q)", k, prev)
			}
		}
		first = false
		prev = k
		if v.Kind() == reflect.Map {
			ev := reflect.New(v.Type().Elem()).Elem()
			if err := s.decode(ev, depth+1); err != nil {
				return err
			}
			v.SetMapIndex(reflect.ValueOf(string(k)).Convert(v.Type().Key()), ev)
			continue
		}
		f, ok := fields[string(k)]
		if !ok {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			continue
		}
		if err := s.decode(v.FieldByIndex(f.index), depth+1); err != nil {
			var se *SyntaxError
			if errors.As(err, &se) && se.Key == "" {
				se.Key = string(k) // name the innermost field in the message
			}
			return err
		}
	}
}

type fieldInfo struct {
	name      string
	index     []int
	omitEmpty bool
}

var fieldCache sync.Map // reflect.Type -> map[string]fieldInfo

func cachedFields(t reflect.Type) map[string]fieldInfo {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]fieldInfo)
	}
	m := map[string]fieldInfo{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("bencode")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		m[name] = fieldInfo{name: name, index: f.Index, omitEmpty: opts == "omitempty"}
	}
	fieldCache.Store(t, m)
	return m
}
