// Package ctl is the agent's control socket: a UNIX socket in the storage
// directory through which `relais-agent ctl` asks the running agent for its
// status and tells it to press the button, release or cancel jobs. Each
// connection carries one JSON request line and one JSON response; requests
// are bounded in size and time, and only users who can open the socket file
// (mode 0660) can use it.
package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SocketName is the control socket's file name in the storage directory.
const SocketName = "agent.sock"

// MaxRequestBytes bounds one request.
const MaxRequestBytes = 64 << 10

// Timeout bounds one exchange.
const Timeout = 30 * time.Second

// Request is what the client sends.
type Request struct {
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
	Lang    string   `json:"lang,omitempty"` // BCP 47 tag of the reader, for Text
}

// Response is what the agent answers.
type Response struct {
	OK    bool            `json:"ok"`
	Error string          `json:"error,omitempty"`
	Text  string          `json:"text,omitempty"` // for people, in the request's language
	Data  json.RawMessage `json:"data,omitempty"` // for programs
}

// A Handler serves one command. It returns text for people and, optionally,
// a value marshalled as Data.
type Handler func(ctx context.Context, req Request) (text string, data any, err error)

// Server serves the control socket.
type Server struct {
	mu       sync.Mutex
	handlers map[string]Handler
	ln       net.Listener
	wg       sync.WaitGroup
}

// NewServer returns a server with no commands.
func NewServer() *Server {
	return &Server{handlers: map[string]Handler{}}
}

// Handle registers the handler of a command.
func (s *Server) Handle(command string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[command] = h
}

// Commands lists the registered commands.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cs []string
	for c := range s.handlers {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}

// Listen creates the socket in dir, replacing a stale one left by a crash.
func (s *Server) Listen(dir string) error {
	path := filepath.Join(dir, SocketName)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return err
	}
	s.ln = ln
	return nil
}

// Serve answers requests until ctx ends, then waits for the exchanges in
// progress.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	defer s.wg.Wait()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, conn)
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(Timeout))
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	resp := s.answer(ctx, conn)
	if err := json.NewEncoder(conn).Encode(resp); err != nil {
		slog.Debug("control socket: cannot answer", "err", err)
	}
}

func (s *Server) answer(ctx context.Context, conn net.Conn) Response {
	line, err := bufio.NewReader(io.LimitReader(conn, MaxRequestBytes)).ReadBytes('\n')
	if err != nil {
		return Response{Error: fmt.Sprintf("bad request: want one JSON line of at most %d bytes", MaxRequestBytes)}
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return Response{Error: "bad request: " + err.Error()}
	}
	s.mu.Lock()
	h := s.handlers[req.Command]
	s.mu.Unlock()
	if h == nil {
		return Response{Error: fmt.Sprintf("this agent has no command %q; it has: %s", req.Command, strings.Join(s.Commands(), ", "))}
	}
	text, data, err := h(ctx, req)
	if err != nil {
		return Response{Error: err.Error()}
	}
	resp := Response{OK: true, Text: text}
	if data != nil {
		if resp.Data, err = json.Marshal(data); err != nil {
			return Response{Error: "cannot encode the answer: " + err.Error()}
		}
	}
	return resp
}

// Call sends one request to the agent whose storage directory is dir.
func Call(ctx context.Context, dir string, req Request) (*Response, error) {
	path := filepath.Join(dir, SocketName)
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("no agent is running with storage in %s (%v)", dir, err)
		}
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return nil, err
	}
	var resp Response
	dec := json.NewDecoder(io.LimitReader(conn, 16<<20))
	if err := dec.Decode(&resp); err != nil {
		return nil, fmt.Errorf("bad answer from the agent: %w", err)
	}
	if !resp.OK {
		return &resp, errors.New(resp.Error)
	}
	return &resp, nil
}
