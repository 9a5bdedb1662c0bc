package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

func startServer(t *testing.T) (*Server, string) {
	t.Helper()
	dir := t.TempDir()
	s := NewServer()
	if err := s.Listen(dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, dir
}

func TestCall(t *testing.T) {
	s, dir := startServer(t)
	s.Handle("echo", func(ctx context.Context, req Request) (string, any, error) {
		return strings.Join(req.Args, " ") + " (" + req.Lang + ")", map[string]int{"n": len(req.Args)}, nil
	})
	s.Handle("fail", func(ctx context.Context, req Request) (string, any, error) {
		return "", nil, errors.New("imprimante injoignable")
	})
	resp, err := Call(context.Background(), dir, Request{Command: "echo", Args: []string{"a", "b"}, Lang: "fr"})
	if err != nil {
		t.Fatal(err)
	}
	var data struct{ N int }
	if err := json.Unmarshal(resp.Data, &data); err != nil || resp.Text != "a b (fr)" || data.N != 2 {
		t.Errorf("got %+v (%v)", resp, err)
	}
	if _, err := Call(context.Background(), dir, Request{Command: "fail"}); err == nil || err.Error() != "imprimante injoignable" {
		t.Errorf("fail: got %v", err)
	}
	_, err = Call(context.Background(), dir, Request{Command: "press"})
	if err == nil || !strings.Contains(err.Error(), `no command "press"; it has: echo, fail`) {
		t.Errorf("unknown command: got %v", err)
	}
}

func TestMalformedAndOversizedRequests(t *testing.T) {
	_, dir := startServer(t)
	for name, payload := range map[string]string{
		"not json":  "press short\n",
		"oversized": `{"command":"` + strings.Repeat("x", MaxRequestBytes) + "\"}\n",
		"no end":    `{"command":"status"`,
	} {
		conn, err := net.Dial("unix", filepath.Join(dir, SocketName))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(payload)); err != nil {
			t.Fatal(err)
		}
		conn.(*net.UnixConn).CloseWrite()
		var resp Response
		if err := json.NewDecoder(conn).Decode(&resp); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		conn.Close()
		if resp.OK || !strings.HasPrefix(resp.Error, "bad request") {
			t.Errorf("%s: got %+v", name, resp)
		}
	}
}

func TestNoAgent(t *testing.T) {
	_, err := Call(context.Background(), t.TempDir(), Request{Command: "status"})
	if err == nil || !strings.Contains(err.Error(), "no agent is running") {
		t.Errorf("got %v", err)
	}
}
