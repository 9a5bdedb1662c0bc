package configs

import (
	"bufio"
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// MaxFileBytes bounds the size of a configuration file.
const MaxFileBytes = 1 << 20

// EnvPrefix starts every environment variable that overrides a key: the key
// printer.uri is overridden by RELAIS_PRINTER_URI.
const EnvPrefix = "RELAIS_"

// An Error is one problem with one key of a configuration.
type Error struct {
	Source string // where the value came from: "agent.toml:12", "RELAIS_MQTT_BROKER", "--set mqtt.broker"
	Key    string // dotted key, such as "mqtt.broker"
	Msg    string // what is wrong and what would be accepted
}

func (e *Error) Error() string {
	switch {
	case e.Source == "" && e.Key == "":
		return e.Msg
	case e.Source == "":
		return e.Key + ": " + e.Msg
	case e.Key == "":
		return e.Source + ": " + e.Msg
	}
	return e.Source + ": " + e.Key + ": " + e.Msg
}

// Errors is the list of every problem found in a configuration, in file order.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Overrides are the values given outside the file: environment variables
// (read with os.LookupEnv unless Env is set) and --set key=value flags, which
// win over the environment.
type Overrides struct {
	Env  func(string) (string, bool)
	Sets []string // "section.key=value"
}

// validator is implemented by the configurations: it returns the problems
// found, each naming its key; the loader adds where the value came from.
type validator interface {
	validate() Errors
}

// load reads the TOML file at path (a missing path with mustExist false keeps
// the defaults already in cfg), applies the overrides and validates.
func load(path string, mustExist bool, cfg validator, ov Overrides) error {
	src := sources{}
	if path != "" {
		data, err := readFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist) && !mustExist:
		case err != nil:
			return err
		default:
			if err := decode(path, data, cfg, src); err != nil {
				return err
			}
		}
	}
	if err := override(cfg, ov, src); err != nil {
		return err
	}
	var errs Errors
	for _, e := range cfg.validate() {
		e.Source = src[e.Key]
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxFileBytes {
		return nil, &Error{Source: path, Msg: fmt.Sprintf("file is larger than %d bytes; is this a configuration file?", MaxFileBytes)}
	}
	return data, nil
}

var typeErr = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// sources maps a dotted key to where its value came from.
type sources map[string]string

func decode(path string, data []byte, cfg any, src sources) error {
	name := filepath.Base(path)
	lines := keyLines(data)
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := pe.Message
			if pe.LastKey != "" {
				return &Error{Source: fmt.Sprintf("%s:%d", name, pe.Position.Line), Key: pe.LastKey, Msg: msg}
			}
			return &Error{Source: fmt.Sprintf("%s:%d", name, pe.Position.Line), Msg: msg}
		}
		// Type mismatches come as "toml: line N (last key "k"): ...".
		if m := typeErr.FindStringSubmatch(err.Error()); m != nil {
			return &Error{Source: name + ":" + m[1], Key: m[2], Msg: m[3]}
		}
		return &Error{Source: name, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	for _, k := range md.Keys() {
		src[k.String()] = fmt.Sprintf("%s:%d", name, lines[k.String()])
	}
	var errs Errors
	known := keysOf(reflect.TypeOf(cfg).Elem(), "")
	for _, k := range md.Undecoded() {
		key := k.String()
		if md.Type(k...) == "Hash" {
			if sectionKnown(known, key) {
				continue // a known table with an unknown key inside: reported for that key
			}
		} else if parent := k[:len(k)-1].String(); len(k) > 1 && md.Type(k[:len(k)-1]...) == "Hash" && !sectionKnown(known, parent) && parent != "" {
			continue // a key inside an unknown table: reported once for the table
		}
		errs = append(errs, &Error{
			Source: fmt.Sprintf("%s:%d", name, lines[key]),
			Key:    key,
			Msg:    "unknown key; " + suggest(known, key),
		})
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return lineOf(errs[i].Source) < lineOf(errs[j].Source) })
		return errs
	}
	return nil
}

func lineOf(source string) int {
	i := strings.LastIndexByte(source, ':')
	n, _ := strconv.Atoi(source[i+1:])
	return n
}

func sectionKnown(known []string, section string) bool {
	for _, k := range known {
		if strings.HasPrefix(k, section+".") {
			return true
		}
	}
	return false
}

// suggest lists the keys that would be accepted where key was found.
func suggest(known []string, key string) string {
	section, _, found := strings.Cut(key, ".")
	if !found {
		var sections []string
		for _, k := range known {
			s, _, _ := strings.Cut(k, ".")
			if len(sections) == 0 || sections[len(sections)-1] != s {
				sections = append(sections, s)
			}
		}
		return "known sections: [" + strings.Join(sections, "] [") + "]"
	}
	var keys []string
	for _, k := range known {
		if s, name, _ := strings.Cut(k, "."); s == section {
			keys = append(keys, name)
		}
	}
	if len(keys) == 0 {
		return suggest(known, section)
	}
	return fmt.Sprintf("known keys in [%s]: %s", section, strings.Join(keys, ", "))
}

// keyLines finds the line of every key in a TOML document. The TOML library
// reports positions only for type errors, so the loader finds the line of an
// unknown or invalid key itself; configurations use plain tables and bare
// keys, which is all this has to understand.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxFileBytes)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '[':
			name := strings.Trim(strings.SplitN(line, "#", 2)[0], "[] \t")
			table = unquoteKey(name)
			if _, ok := lines[table]; !ok {
				lines[table] = n
			}
		default:
			k, _, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			key := unquoteKey(k)
			if table != "" {
				key = table + "." + key
			}
			if _, ok := lines[key]; !ok {
				lines[key] = n
			}
		}
	}
	return lines
}

func unquoteKey(k string) string {
	parts := strings.Split(k, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}

// keysOf lists the dotted keys of a configuration struct, in declaration order.
func keysOf(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" {
			continue
		}
		if prefix != "" {
			name = prefix + "." + name
		}
		if f.Type.Kind() == reflect.Struct && !isLeaf(f.Type) {
			keys = append(keys, keysOf(f.Type, name)...)
			continue
		}
		keys = append(keys, name)
	}
	return keys
}

func tomlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func isLeaf(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(textUnmarshaler) || t == reflect.TypeFor[time.Time]()
}

// field finds the struct field of a dotted key.
func field(cfg any, key string) (reflect.Value, bool) {
	v := reflect.ValueOf(cfg).Elem()
	for _, part := range strings.Split(key, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		found := false
		for i := 0; i < v.NumField(); i++ {
			if tomlName(v.Type().Field(i)) == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return reflect.Value{}, false
		}
	}
	if v.Kind() == reflect.Struct && !isLeaf(v.Type()) {
		return reflect.Value{}, false
	}
	return v, true
}

// EnvName is the environment variable that overrides a dotted key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func override(cfg any, ov Overrides, src sources) error {
	env := ov.Env
	if env == nil {
		env = os.LookupEnv
	}
	var errs Errors
	for _, key := range keysOf(reflect.TypeOf(cfg).Elem(), "") {
		name := EnvName(key)
		val, ok := env(name)
		if !ok {
			continue
		}
		f, _ := field(cfg, key)
		if err := setString(f, val); err != nil {
			errs = append(errs, &Error{Source: name, Key: key, Msg: err.Error()})
			continue
		}
		src[key] = name
	}
	for _, s := range ov.Sets {
		key, val, ok := strings.Cut(s, "=")
		key = strings.TrimSpace(key)
		if !ok {
			errs = append(errs, &Error{Source: "--set " + s, Msg: "want section.key=value"})
			continue
		}
		f, found := field(cfg, key)
		if !found {
			errs = append(errs, &Error{Source: "--set", Key: key, Msg: "unknown key; " + suggest(keysOf(reflect.TypeOf(cfg).Elem(), ""), key)})
			continue
		}
		if err := setString(f, val); err != nil {
			errs = append(errs, &Error{Source: "--set", Key: key, Msg: err.Error()})
			continue
		}
		src[key] = "--set " + key
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// setString parses s into the field as the TOML loader would.
func setString(f reflect.Value, s string) error {
	if u, ok := f.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch f.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration; want a number with a unit, such as 90s, 15m or 2h", s)
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean; want true or false", s)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		f.SetInt(n)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("cannot be set outside the file")
		}
		var items []string
		for _, it := range strings.Split(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		f.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot be set outside the file")
	}
	return nil
}

// A Setting is one key of a loaded configuration with its value as text.
type Setting struct {
	Key, Value string
}

// settings lists every key of cfg with its value, in declaration order.
func settings(cfg any) []Setting {
	var out []Setting
	for _, key := range keysOf(reflect.TypeOf(cfg).Elem(), "") {
		f, _ := field(cfg, key)
		v := fmt.Sprint(f.Interface())
		switch x := f.Interface().(type) {
		case string:
			v = strconv.Quote(x)
		case []string:
			v = "[" + strings.Join(x, ", ") + "]"
		}
		out = append(out, Setting{Key: key, Value: v})
	}
	return out
}
