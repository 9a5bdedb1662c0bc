//go:build !linux

package dnssd

import (
	"context"
	"log/slog"
)

// watch returns a channel that receives a value every pollInterval until
// ctx ends, for Advertise to look at the addresses again.
func watch(ctx context.Context, _ *slog.Logger) <-chan struct{} {
	return poll(ctx, make(chan struct{}, 1))
}
