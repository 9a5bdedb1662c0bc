package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// MaxConnections bounds the connections of each of the agent's HTTP
// listeners: a site has a handful of PCs and phones, and a flood from the
// public network must not exhaust the Pi's memory.
const MaxConnections = 64

func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return netutil.LimitListener(ln, MaxConnections), nil
}

// serveHTTP serves h on ln until ctx ends, then lets requests in progress
// (an upload being spooled) finish for a bounded time.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// A whole request, document included, must arrive within
		// ReadTimeout: 64 MiB in 10 minutes is 110 kB/s, slower than any
		// Wi-Fi link that works at all. Headers get ReadHeaderTimeout.
		ReadTimeout:    10 * time.Minute,
		WriteTimeout:   10 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
