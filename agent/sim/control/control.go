// Package control is the control endpoint shared by Relais's device
// simulators (relais-sim printer and scanner): a loopback HTTP handler on
// which GET answers the simulator's state as JSON and POST applies text
// commands, one per line, such as "media-empty on" or "adf 3", so that
// tests and demos can inject faults into a running simulator.
package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// MaxBytes bounds the commands of one POST.
const MaxBytes = 4 << 10

// Handler returns the control endpoint of a simulator whose state is read
// by status and changed by command, which applies one command line and
// returns the state after it. POST stops at the first failing command
// (answered 400) and answers the state after the commands.
func Handler[S any](status func() S, command func(line string) (S, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			write(w, http.StatusOK, status(), nil)
		case http.MethodPost:
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBytes))
			if err != nil {
				http.Error(w, "commands larger than 4 KiB", http.StatusRequestEntityTooLarge)
				return
			}
			st := status()
			n := 0
			sc := bufio.NewScanner(strings.NewReader(string(body)))
			for sc.Scan() {
				if strings.TrimSpace(sc.Text()) == "" {
					continue
				}
				n++
				if st, err = command(sc.Text()); err != nil {
					write(w, http.StatusBadRequest, st, err)
					return
				}
			}
			if n == 0 {
				write(w, http.StatusBadRequest, st, errors.New("no command"))
				return
			}
			write(w, http.StatusOK, st, nil)
		default:
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
		}
	})
}

// write answers the state as a JSON object, with an "error" member beside
// its fields when a command failed.
func write[S any](w http.ResponseWriter, code int, st S, err error) {
	out := map[string]any{}
	if b, merr := json.Marshal(st); merr == nil {
		json.Unmarshal(b, &out)
	}
	if err != nil {
		out["error"] = err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

// Switch reads the argument of an on/off command, given as its fields:
// "NAME" alone and "NAME on|true|1" mean on, "NAME off|false|0" off.
func Switch(f []string) (bool, error) {
	switch {
	case len(f) == 1:
		return true, nil
	case len(f) == 2 && (f[1] == "on" || f[1] == "true" || f[1] == "1"):
		return true, nil
	case len(f) == 2 && (f[1] == "off" || f[1] == "false" || f[1] == "0"):
		return false, nil
	}
	return false, fmt.Errorf("%s: want on or off, got %q", f[0], strings.Join(f[1:], " "))
}

// NewServer returns the HTTP server of a simulated device: bounded headers
// and idle connections, and net/http's own errors logged at debug level.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// HostPort is a listening address as clients should dial it: a wildcard
// host becomes the loopback address.
func HostPort(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
