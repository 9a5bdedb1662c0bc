package printq

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/relais-fr/relais/agent/upstream"
)

// Defaults of Config.
const (
	DefaultHoldExpiry      = 4 * time.Hour
	DefaultMaxJobBytes     = 64 << 20
	DefaultKeepCompleted   = 100
	DefaultPollInterval    = 5 * time.Second
	DefaultRefreshInterval = 10 * time.Minute
)

// MultipleOperationTimeout is how long a job made by Create may wait for its
// document (or for Close-Job) before the queue gives up on it: a job with no
// document is aborted, one with its document is processed. The IPP server
// advertises it as multiple-operation-time-out, with the action
// process-job.
const MultipleOperationTimeout = 5 * time.Minute

// Config configures a Queue.
type Config struct {
	Dir              string        // spool directory, created 0750
	PrinterURI       string        // the site's printer (ipp:// or ipps://); empty: jobs are accepted and wait
	Hold             bool          // print release: every job waits for Release
	HoldExpiry       time.Duration // held jobs are deleted after this (default 4h)
	QuotaPagesPerDay int           // 0: none; counted on completed impressions per local day
	MaxJobBytes      int64         // document size limit (default 64 MiB)
	KeepCompleted    int           // terminal jobs kept (metadata only, documents deleted) for Get-Jobs; default 100
	PollInterval     time.Duration // printer state/markers poll, default 5s
	RefreshInterval  time.Duration // full printer attributes refresh, default 10m
	Clock            Clock         // nil: the real clock
	HTTP             *http.Client  // nil: default with timeouts
	Recorder         Recorder      // usage events (required)
	Faults           Faults        // printer faults (required)
	Logger           *slog.Logger  // nil: slog.Default()
}

// withDefaults checks c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Dir == "":
		return c, errors.New("printq: no spool directory")
	case c.Recorder == nil:
		return c, errors.New("printq: no Recorder")
	case c.Faults == nil:
		return c, errors.New("printq: no Faults")
	case c.HoldExpiry < 0, c.MaxJobBytes < 0, c.KeepCompleted < 0, c.PollInterval < 0,
		c.RefreshInterval < 0, c.QuotaPagesPerDay < 0:
		return c, errors.New("printq: negative limit or interval")
	}
	if c.PrinterURI != "" {
		if _, err := upstream.HTTPURL(c.PrinterURI); err != nil {
			return c, fmt.Errorf("printq: printer: %w", err)
		}
	}
	if c.HoldExpiry == 0 {
		c.HoldExpiry = DefaultHoldExpiry
	}
	if c.MaxJobBytes == 0 {
		c.MaxJobBytes = DefaultMaxJobBytes
	}
	if c.KeepCompleted == 0 {
		c.KeepCompleted = DefaultKeepCompleted
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.HTTP == nil {
		c.HTTP = defaultHTTP()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// defaultHTTP is the client used when Config.HTTP is nil: no proxy, bounded
// connection and header times. Whole requests are bounded by the queue's
// contexts, scaled to the document for Print-Job.
func defaultHTTP() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
	}}
}
