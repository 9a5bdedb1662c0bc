package api

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// validator is implemented by every payload type; path is the JSON path of
// the value, used to name fields in errors.
type validator interface {
	validate(path string) error
}

// field describes one JSON field of a payload struct.
type field struct {
	name  string       // JSON name
	index int          // Go field index
	omit  bool         // omitempty or omitzero: absent when zero, optional
	typ   reflect.Type // Go type
}

var fieldCache sync.Map // reflect.Type -> []field

// fieldsOf returns the JSON fields of struct type t, in declaration order.
func fieldsOf(t reflect.Type) []field {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]field)
	}
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if !sf.IsExported() || tag == "-" {
			continue
		}
		name, rest, _ := strings.Cut(tag, ",")
		opts := strings.Split(rest, ",")
		omit := slices.Contains(opts, "omitempty") || slices.Contains(opts, "omitzero")
		fs = append(fs, field{name: name, index: i, omit: omit, typ: sf.Type})
	}
	fieldCache.Store(t, fs)
	return fs
}

var timeType = reflect.TypeFor[time.Time]()

// present reports whether an optional field with value v is encoded.
func present(v reflect.Value) bool {
	if v.Type() == timeType {
		return !v.Interface().(time.Time).IsZero()
	}
	switch v.Kind() {
	case reflect.Slice:
		return v.Len() > 0
	case reflect.Pointer:
		return !v.IsNil()
	}
	return !v.IsZero()
}

// checkStruct checks every field of the payload struct s against fieldRules,
// recursing into nested payloads, then applies the conditions of its type.
func checkStruct(path string, s any) error {
	v := reflect.ValueOf(s)
	t := v.Type()
	rules := fieldRules[t]
	fs := fieldsOf(t)
	for _, f := range fs {
		fv := v.Field(f.index)
		if f.omit && !present(fv) {
			continue
		}
		if err := checkValue(join(path, f.name), fv, rules[f.name]); err != nil {
			return err
		}
	}
	for _, c := range conditions[t] {
		i := slices.IndexFunc(fs, func(f field) bool { return f.name == c.field })
		if v.Field(fs[i].index).Interface() != c.value {
			continue
		}
		for _, f := range fs {
			switch on := present(v.Field(f.index)); {
			case !on && contains(c.required, f.name):
				return invalid(join(path, f.name), fmt.Sprintf("required when %s is %v", c.field, c.value))
			case on && contains(c.forbidden, f.name):
				return invalid(join(path, f.name), fmt.Sprintf("not allowed when %s is %v", c.field, c.value))
			}
		}
	}
	return nil
}

// checkValue checks one value against rule r.
func checkValue(path string, v reflect.Value, r rule) error {
	if v.Type() == timeType {
		return checkTime(path, v.Interface().(time.Time))
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return invalid(path, "required")
		}
		return checkValue(path, v.Elem(), r)
	case reflect.Struct:
		return v.Interface().(validator).validate(path)
	case reflect.Slice:
		if n := v.Len(); n == 0 && r.minItems > 0 {
			return invalid(path, "must not be empty")
		} else if n < r.minItems {
			return invalid(path, fmt.Sprintf("must hold at least %d items", r.minItems))
		} else if n > r.maxItems {
			return invalid(path, fmt.Sprintf("must hold at most %d items", r.maxItems))
		}
		item := noRule
		if r.items != nil {
			item = *r.items
		}
		for i := range v.Len() {
			if err := checkValue(fmt.Sprintf("%s[%d]", path, i), v.Index(i), item); err != nil {
				return err
			}
		}
		return nil
	case reflect.String:
		return r.checkString(path, v.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return r.checkNumber(path, float64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return r.checkNumber(path, float64(v.Uint()))
	case reflect.Float32, reflect.Float64:
		return r.checkNumber(path, v.Float())
	}
	return nil // bool
}

func (r rule) checkString(path, s string) error {
	switch {
	case s == "":
		return invalid(path, "must not be empty")
	case r.maxBytes > 0 && len(s) > r.maxBytes:
		return invalid(path, fmt.Sprintf("must be at most %d bytes", r.maxBytes))
	case r.enum != nil && !contains(r.enum, s):
		return invalid(path, "must be one of "+strings.Join(r.enum, ", "))
	case r.text && !printable(s):
		return invalid(path, "must be printable UTF-8 text")
	case r.re != nil && !r.re.MatchString(s):
		return invalid(path, "must match "+r.re.String())
	case r.notRe != nil && r.notRe.MatchString(s):
		return invalid(path, "must not match "+r.notRe.String())
	case r.format == "date":
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			return invalid(path, "must be a valid date (YYYY-MM-DD)")
		}
	}
	return nil
}

func (r rule) checkNumber(path string, x float64) error {
	if r.min != nil && x < *r.min {
		return invalid(path, "must be >= "+formatNumber(*r.min))
	}
	if r.max != nil && x > *r.max {
		return invalid(path, "must be <= "+formatNumber(*r.max))
	}
	return nil
}

func formatNumber(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// checkTime checks a timestamp: set, in UTC, within [minTime, maxTime).
func checkTime(path string, t time.Time) error {
	switch {
	case t.IsZero():
		return invalid(path, "required")
	case t.Location() != time.UTC:
		return invalid(path, "must be in UTC")
	case t.Before(minTime) || !t.Before(maxTime):
		return invalid(path, "must be from 2020-01-01 to 2099-12-31")
	}
	return nil
}

// printable reports whether s is valid UTF-8 made of printable characters
// (letters, marks, numbers, punctuation, symbols and the ASCII space).
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// join appends a field name to a JSON path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }
