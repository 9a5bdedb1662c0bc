// Package systemd holds the systemd units of relais-agent and relais-central,
// the tests that keep them valid and hardened, and the few calls through
// which both binaries speak to systemd: readiness, watchdog pings, status and
// stopping notifications (sd_notify).
package systemd
