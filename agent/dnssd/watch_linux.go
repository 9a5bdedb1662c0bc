package dnssd

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"
)

// watch returns a channel that receives a value, soon after, whenever a link
// or an address of the host changes, until ctx ends. It listens to the
// kernel's rtnetlink link and address groups; should that fail, it polls.
func watch(ctx context.Context, log *slog.Logger) <-chan struct{} {
	ch := make(chan struct{}, 1)
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrNetlink{
			Family: unix.AF_NETLINK,
			Groups: unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR,
		})
		if err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		log.Warn("dnssd: cannot watch address changes, polling instead", "err", err, "every", pollInterval)
		return poll(ctx, ch)
	}
	// Non-blocking, so that the runtime poller reads it and Close ends Read.
	f := os.NewFile(uintptr(fd), "rtnetlink")
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			_, err := f.Read(buf)
			switch {
			case err == nil, errors.Is(err, unix.ENOBUFS): // ENOBUFS: some were lost
				wake(ch)
			case ctx.Err() != nil || errors.Is(err, os.ErrClosed):
				return
			default:
				log.Warn("dnssd: lost the address watch, polling instead", "err", err, "every", pollInterval)
				poll(ctx, ch)
				return
			}
		}
	}()
	return ch
}
