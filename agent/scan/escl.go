package scan

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ESCL scans from an eSCL (AirScan) scanner. It handles what real devices
// do beyond the specification, as sane-airscan documents it:
//
//   - capabilities and status read by namespace, tolerating elements
//     without prefix or namespace, or in the other of pwg: and scan:;
//   - a root URL given with or without its trailing slash;
//   - ScanJobs answering 201 (or 200) with a Location that is a path,
//     relative, or absolute naming another host (such as localhost): the
//     job is always reached on the configured scanner's host;
//   - a job location with or without a trailing slash;
//   - NextDocument until 404, which ends a feeder job; after a page from
//     the glass any error ends the job too;
//   - 503 Service Unavailable and 409 Conflict while the device is busy or
//     not ready: ScannerStatus says whether a jam, an open cover or an
//     empty feeder explains them, or else the request is retried with
//     backoff on the injected clock;
//   - a job that ends early (404 with the job Aborted, or the feeder
//     jammed) is a failure, not a short document;
//   - the job is deleted at the end, whatever happened;
//   - a device that offers only PDF: its documents are merged.
type ESCL struct {
	base   *url.URL // the eSCL root, with a trailing slash
	opt    Options
	client *http.Client
	lock   chan struct{} // one scan at a time

	mu    sync.Mutex
	model string // from the last capabilities read
}

var _ Scanner = (*ESCL)(nil)

// NewESCL returns a driver for the eSCL scanner whose root is baseURL, such
// as http://192.0.2.7/eSCL.
func NewESCL(baseURL string, opt Options) (*ESCL, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return nil, fmt.Errorf("scanner URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("scanner URL %q: want http://HOST[:PORT]/eSCL", baseURL)
	}
	u.RawQuery, u.Fragment = "", ""
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		u.RawPath = ""
	}
	opt = opt.withDefaults()
	e := &ESCL{base: u, opt: opt, client: opt.HTTPClient, lock: make(chan struct{}, 1)}
	if e.client == nil {
		e.client = e.newClient()
	}
	return e, nil
}

// newClient returns an HTTP client that never goes through a proxy and
// follows redirects only on the scanner's own host. Scanners serve HTTPS
// with self-signed certificates, so their certificates are not verified.
func (e *ESCL) newClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			TLSClientConfig:       &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // devices' certificates are self-signed
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       30 * time.Second,
			ResponseHeaderTimeout: e.opt.RequestTimeout,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Host != e.base.Host {
				return fmt.Errorf("redirect to another host (%s)", req.URL.Host)
			}
			return nil
		},
	}
}

// URL returns the eSCL root, with its trailing slash.
func (e *ESCL) URL() string { return e.base.String() }

// resolve resolves a reference against the eSCL root, and keeps the
// scanner's scheme and host whatever the reference names.
func (e *ESCL) resolve(ref string) (*url.URL, error) {
	r, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return nil, err
	}
	u := e.base.ResolveReference(r)
	u.Scheme, u.Host, u.User, u.Fragment = e.base.Scheme, e.base.Host, nil, ""
	return u, nil
}

// do sends one request, bounded by RequestTimeout. The caller closes the
// body, which it reads before the request's context ends.
func (e *ESCL) do(ctx context.Context, method string, u *url.URL, body []byte) (*http.Response, context.CancelFunc, error) {
	rctx, cancel := context.WithTimeout(ctx, e.opt.RequestTimeout)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, u.String(), rd)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/xml")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return resp, cancel, nil
}

// discard reads a little of a body that is not used, so that the
// connection can be reused, and closes it.
func discard(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// netError maps a failed request to a reason.
func netError(ctx context.Context, what string, err error, pages int) *Error {
	if ctx.Err() != nil {
		return ctxError(ctx, pages)
	}
	return &Error{Reason: Unreachable, Pages: pages, Err: fmt.Errorf("%s: %w", what, err)}
}

// getXML GETs one of the root's XML documents.
func (e *ESCL) getXML(ctx context.Context, name string) ([]byte, error) {
	u, _ := e.resolve(name)
	resp, cancel, err := e.do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, netError(ctx, "GET "+name, err, 0)
	}
	defer cancel()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		discard(resp)
		return nil, fail(IOError, "GET %s: HTTP %s", u, resp.Status)
	}
	b, err := readXML(resp.Body)
	if err != nil {
		return nil, fail(IOError, "GET %s: %v", u, err)
	}
	return b, nil
}

// Capabilities asks the scanner for its capabilities.
func (e *ESCL) Capabilities(ctx context.Context) (*Capabilities, error) {
	b, err := e.getXML(ctx, "ScannerCapabilities")
	if err != nil {
		return nil, err
	}
	c, err := ParseCapabilities(b)
	if err != nil {
		return nil, fail(IOError, "ScannerCapabilities: %v", err)
	}
	e.mu.Lock()
	e.model = c.MakeAndModel
	e.mu.Unlock()
	return c, nil
}

// ScannerStatus asks the scanner for its eSCL status.
func (e *ESCL) ScannerStatus(ctx context.Context) (*ScannerStatus, error) {
	b, err := e.getXML(ctx, "ScannerStatus")
	if err != nil {
		return nil, err
	}
	s, err := ParseStatus(b)
	if err != nil {
		return nil, fail(IOError, "ScannerStatus: %v", err)
	}
	return s, nil
}

// Status implements Scanner.
func (e *ESCL) Status(ctx context.Context) (Status, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opt.RequestTimeout)
	defer cancel()
	st, err := e.ScannerStatus(ctx)
	if err != nil {
		return Status{}, err
	}
	e.mu.Lock()
	model := e.model
	e.mu.Unlock()
	if model == "" {
		if c, err := e.Capabilities(ctx); err == nil {
			model = c.MakeAndModel
		}
	}
	s := Status{State: strings.ToLower(st.State), ADF: adfWord(st.ADFState), Model: model}
	if r, _ := statusFault(st, true); r != Busy {
		s.Fault = r
	}
	return s, nil
}

// adfWord turns ScannerAdfLoaded into "loaded", ScannerAdfDoorOpen into
// "door-open".
func adfWord(s string) string {
	s = strings.TrimPrefix(s, "ScannerAdf")
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// statusFault tells what in a ScannerStatus stops a scan: a jam, an open
// cover, an empty feeder (for a feeder scan), a scanner down, or busy.
// It returns "" when the status explains nothing.
func statusFault(st *ScannerStatus, feeder bool) (Reason, string) {
	if feeder {
		switch st.ADFState {
		case "ScannerAdfJam", "ScannerAdfMispick", "ScannerAdfMultipickDetected":
			return Jammed, "feeder: " + st.ADFState
		case "ScannerAdfDoorOpen", "ScannerAdfHatchOpen":
			return CoverOpen, "feeder: " + st.ADFState
		}
	}
	switch st.State {
	case "Down", "Stopped":
		return Unreachable, "scanner state " + st.State
	case "Processing", "Testing":
		return Busy, "scanner state " + st.State
	}
	return "", ""
}

// plan is how a request is carried out on a given scanner.
type plan struct {
	settings Settings
	source   Source
	color    bool
	duplex   bool
}

// makePlan fits a request to the capabilities: source, colour mode,
// document format, resolution and A4 region.
func makePlan(c *Capabilities, st *ScannerStatus, req Request) (plan, error) {
	p := plan{source: req.Source}
	if p.source == SourceAuto {
		switch {
		case c.ADF != nil && st != nil && st.ADFState == "ScannerAdfLoaded":
			p.source = SourceFeeder
		case c.Platen != nil:
			p.source = SourcePlaten
		default:
			p.source = SourceFeeder
		}
	}
	var ic *InputCaps
	switch p.source {
	case SourcePlaten:
		if ic = c.Platen; ic == nil {
			return p, fail(Unsupported, "the scanner has no glass")
		}
		p.settings.Source = "Platen"
	case SourceFeeder:
		if ic = c.ADF; ic == nil {
			return p, fail(Unsupported, "the scanner has no document feeder")
		}
		p.settings.Source = "Feeder"
		if req.Duplex && c.ADFDuplex != nil {
			ic, p.duplex = c.ADFDuplex, true
			p.settings.Duplex = true
		}
	}
	switch {
	case req.Color && ic.HasColorMode("RGB24"), !req.Color && !ic.HasColorMode("Grayscale8") && ic.HasColorMode("RGB24"):
		p.settings.ColorMode, p.color = "RGB24", true
	case ic.HasColorMode("Grayscale8"):
		p.settings.ColorMode = "Grayscale8"
	default:
		return p, fail(Unsupported, "the scanner offers neither RGB24 nor Grayscale8 (%s)", strings.Join(ic.ColorModes, ", "))
	}
	// JPEG pages whatever is wanted: a PDF is assembled from them. A
	// device that offers only PDF sends PDF.
	switch {
	case ic.HasFormat(FormatJPEG):
		p.settings.Format = FormatJPEG
	case ic.HasFormat(FormatPDF):
		p.settings.Format = FormatPDF
	default:
		return p, fail(Unsupported, "the scanner offers neither JPEG nor PDF (%s)", strings.Join(ic.Formats, ", "))
	}
	p.settings.FormatExt = ic.FormatExt
	res := ic.Resolution(req.Resolution)
	p.settings.XResolution, p.settings.YResolution = res, res
	p.settings.Width, p.settings.Height = A4Width, A4Height
	if ic.MaxWidth > 0 {
		p.settings.Width = min(max(A4Width, ic.MinWidth), ic.MaxWidth)
	}
	if ic.MaxHeight > 0 {
		p.settings.Height = min(max(A4Height, ic.MinHeight), ic.MaxHeight)
	}
	return p, nil
}

// acquire takes the scan lock, or gives up when ctx ends.
func (e *ESCL) acquire(ctx context.Context) error {
	select {
	case e.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctxError(ctx, 0)
	}
}

// Scan implements Scanner.
func (e *ESCL) Scan(ctx context.Context, req Request, w io.Writer) (Result, error) {
	req, err := req.normalize()
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.opt.Timeout)
	defer cancel()
	if err := e.acquire(ctx); err != nil {
		return Result{}, err
	}
	defer func() { <-e.lock }()

	caps, err := e.Capabilities(ctx)
	if err != nil {
		return Result{}, err
	}
	var st *ScannerStatus
	if req.Source == SourceAuto && caps.ADF != nil {
		// Without a status (some devices have none), the glass.
		st, _ = e.ScannerStatus(ctx)
	}
	p, err := makePlan(caps, st, req)
	if err != nil {
		return Result{}, err
	}
	job, err := e.createJob(ctx, p)
	if err != nil {
		return Result{}, err
	}
	defer e.deleteJob(ctx, job)
	pages, err := e.fetchPages(ctx, job, p)
	if err != nil {
		return Result{}, err
	}
	n := 0
	for _, pg := range pages {
		n += pg.pages
	}
	format, written, err := writeDocument(w, pages, req.Format, p.settings.XResolution)
	if err != nil {
		return Result{}, &Error{Reason: IOError, Pages: n, Err: err}
	}
	r := Result{Pages: n, Format: format, Color: p.color, Duplex: p.duplex, Source: p.source,
		Resolution: p.settings.XResolution, Bytes: written}
	e.opt.Log.Info("escl: scanned", "pages", r.Pages, "format", r.Format, "source", r.Source,
		"dpi", r.Resolution, "color", r.Color, "duplex", r.Duplex, "bytes", r.Bytes)
	return r, nil
}

// backoff is the pause before retry number attempt (1, 2, ...).
func (e *ESCL) backoff(attempt int) time.Duration {
	d := e.opt.Backoff
	for i := 1; i < attempt && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, max(MaxBackoff, e.opt.Backoff))
}

// explain asks ScannerStatus why a request failed. A status that cannot be
// had explains nothing, unless the scanner no longer answers at all.
func (e *ESCL) explain(ctx context.Context, feeder bool) (*ScannerStatus, Reason, string) {
	st, err := e.ScannerStatus(ctx)
	if err != nil {
		if ReasonOf(err) == Unreachable {
			return nil, Unreachable, err.Error()
		}
		return nil, "", ""
	}
	r, why := statusFault(st, feeder)
	return st, r, why
}

// createJob POSTs the scan settings and returns the job's URL. A busy
// scanner is asked again with backoff.
func (e *ESCL) createJob(ctx context.Context, p plan) (*url.URL, error) {
	u, _ := e.resolve("ScanJobs")
	body := p.settings.XML()
	feeder := p.source == SourceFeeder
	for attempt := 1; ; attempt++ {
		resp, cancel, err := e.do(ctx, http.MethodPost, u, body)
		if err != nil {
			return nil, netError(ctx, "POST ScanJobs", err, 0)
		}
		loc := resp.Header.Get("Location")
		code, status := resp.StatusCode, resp.Status
		discard(resp)
		cancel()
		switch {
		case code == http.StatusCreated || code == http.StatusOK && loc != "":
			if loc == "" {
				return nil, fail(IOError, "ScanJobs: HTTP %s without a Location", status)
			}
			job, err := e.resolve(loc)
			if err != nil || job.Path == "" {
				return nil, fail(IOError, "ScanJobs: bad Location %q", loc)
			}
			e.opt.Log.Info("escl: job created", "job", job.Path, "source", p.settings.Source,
				"format", p.settings.Format, "dpi", p.settings.XResolution, "mode", p.settings.ColorMode)
			return job, nil
		case code == http.StatusServiceUnavailable || code == http.StatusConflict:
			st, r, why := e.explain(ctx, feeder)
			if feeder && r == "" && st != nil && st.ADFState == "ScannerAdfEmpty" {
				// An empty feeder explains a refused feeder job.
				r, why = NoDocuments, "feeder empty"
			}
			switch r {
			case "", Busy:
			default:
				return nil, fail(r, "ScanJobs: HTTP %s; %s", status, why)
			}
			if attempt >= e.opt.Retries {
				return nil, fail(Busy, "ScanJobs: HTTP %s %d times", status, attempt)
			}
			d := e.backoff(attempt)
			e.opt.Log.Info("escl: scanner busy, retrying", "status", code, "in", d, "attempt", attempt)
			if err := sleep(ctx, e.opt.Clock, d); err != nil {
				return nil, ctxError(ctx, 0)
			}
		default:
			if _, r, why := e.explain(ctx, feeder); r != "" {
				return nil, fail(r, "ScanJobs: HTTP %s; %s", status, why)
			}
			return nil, fail(IOError, "ScanJobs: HTTP %s", status)
		}
	}
}

// nextDocument is job's NextDocument URL, the job's path with or without
// its trailing slash.
func nextDocument(job *url.URL) *url.URL {
	u := *job
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.Path += "NextDocument"
	u.RawPath = ""
	return &u
}

// fetchPages GETs NextDocument until the job ends, and checks how it
// ended.
func (e *ESCL) fetchPages(ctx context.Context, job *url.URL, p plan) ([]page, error) {
	next := nextDocument(job)
	feeder := p.source == SourceFeeder
	var pages []page
	count, total, busy := 0, int64(0), 0
	failed := func(r Reason, format string, a ...any) error {
		return &Error{Reason: r, Pages: count, Err: fmt.Errorf(format, a...)}
	}
	for {
		resp, cancel, err := e.do(ctx, http.MethodGet, next, nil)
		if err != nil {
			if ctx.Err() == nil && !feeder && count > 0 {
				break // the glass holds one page
			}
			return nil, netError(ctx, "GET NextDocument", err, count)
		}
		code, status := resp.StatusCode, resp.Status
		if code == http.StatusOK {
			data, err := io.ReadAll(io.LimitReader(resp.Body, e.opt.MaxPageBytes+1))
			resp.Body.Close()
			cancel()
			switch {
			case err != nil:
				return nil, netError(ctx, "reading a page", err, count)
			case int64(len(data)) > e.opt.MaxPageBytes:
				return nil, failed(TooLarge, "a page larger than %d bytes", e.opt.MaxPageBytes)
			case total+int64(len(data)) > e.opt.MaxBytes:
				return nil, failed(TooLarge, "pages larger than %d bytes", e.opt.MaxBytes)
			}
			pg, err := sniff(data, e.opt.MaxPixels)
			if err != nil {
				var se *Error
				if errors.As(err, &se) {
					se.Pages = count
					return nil, se
				}
				return nil, failed(IOError, "page %d: %v", count+1, err)
			}
			if count+pg.pages > e.opt.MaxPages {
				return nil, failed(TooLarge, "more than %d pages", e.opt.MaxPages)
			}
			pages = append(pages, pg)
			count += pg.pages
			total += int64(len(data))
			busy = 0
			e.opt.Log.Debug("escl: page", "n", count, "format", pg.format, "bytes", len(data))
			continue
		}
		discard(resp)
		cancel()
		switch code {
		case http.StatusNotFound:
			return pages, e.checkEnd(ctx, job, feeder, count)
		case http.StatusServiceUnavailable, http.StatusConflict:
			_, r, why := e.explain(ctx, feeder)
			switch r {
			case "", Busy:
			default:
				return nil, failed(r, "NextDocument: HTTP %s; %s", status, why)
			}
			busy++
			if busy >= 3*e.opt.Retries {
				return nil, failed(Busy, "NextDocument: HTTP %s %d times", status, busy)
			}
			d := e.backoff(busy)
			e.opt.Log.Info("escl: page not ready, retrying", "status", code, "in", d)
			if err := sleep(ctx, e.opt.Clock, d); err != nil {
				return nil, ctxError(ctx, count)
			}
			continue
		}
		if !feeder && count > 0 {
			break
		}
		if _, r, why := e.explain(ctx, feeder); r != "" && r != Busy {
			return nil, failed(r, "NextDocument: HTTP %s; %s", status, why)
		}
		return nil, failed(IOError, "NextDocument: HTTP %s", status)
	}
	return pages, nil
}

// checkEnd tells whether a job that has no more documents ended well: not
// aborted, not jammed, and with at least one page.
func (e *ESCL) checkEnd(ctx context.Context, job *url.URL, feeder bool, count int) error {
	st, r, why := e.explain(ctx, feeder)
	var j *JobInfo
	if st != nil {
		j = st.Job(job.Path)
	}
	aborted := j != nil && (j.State == "Aborted" || j.State == "Canceled")
	switch {
	case r == Unreachable && st == nil:
		// The scanner went away after the last page.
		if count > 0 {
			return nil
		}
		return &Error{Reason: Unreachable, Pages: count, Err: errors.New(why)}
	case aborted && r != "" && r != Busy:
		return &Error{Reason: r, Pages: count, Err: fmt.Errorf("job %s; %s", strings.ToLower(j.State), why)}
	case aborted && feeder && count == 0 && st.ADFState == "ScannerAdfEmpty":
		return &Error{Reason: NoDocuments, Pages: count, Err: errors.New("feeder empty")}
	case aborted:
		return &Error{Reason: IOError, Pages: count, Err: fmt.Errorf("job %s (%s)", strings.ToLower(j.State), strings.Join(j.Reasons, ", "))}
	case j == nil && (r == Jammed || r == CoverOpen):
		// The job is not listed, and the feeder is stuck.
		return &Error{Reason: r, Pages: count, Err: errors.New(why)}
	case count == 0 && feeder:
		return &Error{Reason: NoDocuments, Pages: 0, Err: errors.New("no page from the feeder")}
	case count == 0:
		return &Error{Reason: IOError, Pages: 0, Err: errors.New("no page from the glass")}
	}
	return nil
}

// deleteJob deletes the job, even when ctx has ended; errors are only
// logged (many devices answer 404 or 405 for a finished job).
func (e *ESCL) deleteJob(ctx context.Context, job *url.URL) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	resp, rcancel, err := e.do(dctx, http.MethodDelete, job, nil)
	if err != nil {
		e.opt.Log.Debug("escl: deleting the job", "job", job.Path, "err", err)
		return
	}
	discard(resp)
	rcancel()
	e.opt.Log.Debug("escl: job deleted", "job", job.Path, "status", resp.StatusCode)
}
