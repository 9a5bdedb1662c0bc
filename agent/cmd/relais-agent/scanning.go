package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/relais-fr/relais/agent/inbox"
	"github.com/relais-fr/relais/agent/printq"
	"github.com/relais-fr/relais/agent/scan"
	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/configs"
)

// newScanner returns the scanner of the configuration, or nil without one.
func newScanner(cfg configs.AgentScanner) (scan.Scanner, error) {
	switch cfg.Driver {
	case "escl":
		return scan.NewESCL(cfg.URL, scan.Options{})
	case "sane":
		return scan.NewSANE(cfg.Device, scan.Options{})
	}
	return nil, nil
}

// scanFault raises the scanner's fault while a scan fails because of the
// scanner (jam, cover open, unreachable) and clears it when a scan works.
func (a *agent) scanFault(err error) {
	reason := scan.ReasonOf(err)
	var recErr error
	switch {
	case err == nil:
		for _, code := range []string{"scanner-unreachable", "scanner-jam", "scanner-cover-open"} {
			if e := a.outbox.Clear(api.DeviceScanner, code); e != nil {
				recErr = e
			}
		}
	case reason == scan.Unreachable:
		recErr = a.outbox.Raise(api.DeviceScanner, "scanner-unreachable", api.SeverityFault)
	case reason == scan.Jammed:
		recErr = a.outbox.Raise(api.DeviceScanner, "scanner-jam", api.SeverityFault)
	case reason == scan.CoverOpen:
		recErr = a.outbox.Raise(api.DeviceScanner, "scanner-cover-open", api.SeverityFault)
	}
	if recErr != nil {
		slog.Error("cannot record a scanner fault", "err", recErr)
	}
}

// scanOnce scans with req into a file in the storage directory, records
// scan.failed and the scanner's faults, and returns the open file.
func (a *agent) scanOnce(ctx context.Context, req scan.Request) (*os.File, scan.Result, error) {
	if a.scanner == nil {
		a.recordScanFailed("no-scanner")
		return nil, scan.Result{}, errNoScanner
	}
	f, err := os.CreateTemp(a.cfg.Storage.Dir, ".scan-*")
	if err != nil {
		return nil, scan.Result{}, err
	}
	os.Remove(f.Name()) // unnamed: gone with the file, whatever happens
	res, err := a.scanner.Scan(ctx, req, f)
	a.scanFault(err)
	if err != nil {
		f.Close()
		a.recordScanFailed(string(scan.ReasonOf(err)))
		return nil, res, err
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, res, err
	}
	return f, res, nil
}

func (a *agent) recordScanFailed(reason string) {
	if err := a.outbox.Record(api.Event{Type: api.EventScanFailed, Reason: reason}); err != nil {
		slog.Error("cannot record scan.failed", "err", err)
	}
}

// copy scans and prints the result through the same queue as every job,
// as a copy: the print queue records copy.completed when it is printed.
func (a *agent) copy(ctx context.Context) error {
	format := scan.FormatPDF
	if !a.printerTakes(format) && a.printerTakes(scan.FormatJPEG) {
		format = scan.FormatJPEG
	}
	f, res, err := a.scanOnce(ctx, scan.Request{Format: format, Color: true, Resolution: a.cfg.Scanner.Resolution})
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = a.queue.Submit(printq.Ticket{Name: "Copie", User: "relais", Format: res.Format, Source: api.SourceCopy}, f)
	return err
}

// printerTakes reports whether the site printer accepts a format, as far as
// the queue knows its capabilities.
func (a *agent) printerTakes(format string) bool {
	attrs := a.queue.Printer().Attrs
	if attrs == nil {
		return format == scan.FormatPDF
	}
	for _, at := range attrs {
		if at.Name == "document-format-supported" {
			for _, v := range at.Values {
				if v.V.String() == format {
					return true
				}
			}
		}
	}
	return false
}

// scanToInbox scans to one PDF in the inbox, where the aidant picks it up
// from the local page until it expires.
func (a *agent) scanToInbox(ctx context.Context) error {
	f, res, err := a.scanOnce(ctx, scan.Request{Format: scan.FormatPDF, Color: true, Resolution: a.cfg.Scanner.Resolution})
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := a.inbox.Add(f, inbox.Meta{Pages: res.Pages, Format: res.Format}); err != nil {
		if errors.Is(err, inbox.ErrFull) || errors.Is(err, inbox.ErrTooLarge) {
			a.recordScanFailed("inbox-full")
		}
		return err
	}
	e := api.Event{Type: api.EventScanCompleted, Pages: new(res.Pages), Format: res.Format, Bytes: new(res.Bytes),
		Color: new(res.Color), Duplex: new(res.Duplex)}
	return a.outbox.Record(e)
}
