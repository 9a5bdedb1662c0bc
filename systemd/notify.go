package systemd

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Ready tells systemd that the service has started (READY=1). Outside
// systemd, where NOTIFY_SOCKET is unset, it does nothing.
func Ready() {
	notify(daemon.SdNotifyReady)
}

// Stopping tells systemd that the service is shutting down (STOPPING=1).
func Stopping() {
	notify(daemon.SdNotifyStopping)
}

// Status sets the one-line status that `systemctl status` shows.
func Status(line string) {
	notify("STATUS=" + line)
}

// Watchdog pings systemd's watchdog (WATCHDOG=1) at half the interval that
// the unit's WatchdogSec sets, for as long as ctx lives and alive reports no
// error: a service whose own checks fail stops pinging and is restarted. It
// returns at once when the watchdog is not enabled.
func Watchdog(ctx context.Context, alive func() error) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		if err := alive(); err != nil {
			slog.Error("not pinging the systemd watchdog", "err", err)
		} else {
			notify(daemon.SdNotifyWatchdog)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func notify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		slog.Warn("cannot notify systemd", "state", state, "err", err)
	}
}
