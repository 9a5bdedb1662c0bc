// Package chaos is the system chaos scenario of Relais (`make chaos`, and a
// shortened form in `make test`): three relais-agent processes with
// simulated buttons, each in front of its own ippeveprinter and eSCL scanner
// simulator, report through a real mosquitto to relais-central running on
// PostgreSQL. While a steady stream of prints (marked PDFs over IPP), copies
// and scans flows, the scenario kills agents with SIGKILL, stops and restarts
// the broker, stops central with SIGTERM and with SIGKILL, switches a
// printer off, fills an agent's storage (a small tmpfs) until the disk is
// full and restarts the hostapd an agent watches. After a bounded drain it
// counts at each end: every job the agent accepted was printed exactly once,
// every event in each agent's outbox is in central exactly once, every
// fault is cleared or shown open alike on both sides, and no scan outlives
// the inbox's retention; it prints the faults injected and what was lost or
// duplicated. The package holds only tests; RELAIS_CHAOS=long runs the long
// form.
package chaos
