// Package upstream is the agent's IPP client for the site's real printer:
// it turns an ipp:// or ipps:// printer URI into the HTTP address to post
// to, sends goipp messages with bounded time and response size, and reads
// the printer's attributes.
package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/OpenPrinting/goipp"
)

// MaxResponseBytes bounds a response from the printer. A real printer's full
// attribute set is around 100 KiB.
const MaxResponseBytes = 8 << 20

// HTTPURL returns the HTTP URL that carries IPP for a printer URI: ipp://
// becomes http:// and ipps:// https://, on port 631 unless another is named.
func HTTPURL(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "ipp":
		u.Scheme = "http"
	case "ipps":
		u.Scheme = "https"
	case "http", "https":
		return u.String(), nil
	default:
		return "", fmt.Errorf("%q is not an IPP URI (want ipp:// or ipps://)", uri)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q has no host", uri)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "631")
	}
	return u.String(), nil
}

// A Client talks IPP to one printer.
type Client struct {
	URI  string       // the printer's URI, sent as printer-uri
	HTTP *http.Client // nil: a client with a 30 s timeout
	id   atomic.Uint32
}

// NewRequest returns a request for op with the operation attributes every
// request carries: charset, language and printer-uri.
func (c *Client) NewRequest(op goipp.Op) *goipp.Message {
	m := goipp.NewRequest(goipp.MakeVersion(2, 0), op, c.id.Add(1))
	m.Operation.Add(goipp.MakeAttribute("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
	m.Operation.Add(goipp.MakeAttribute("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
	m.Operation.Add(goipp.MakeAttribute("printer-uri", goipp.TagURI, goipp.String(c.URI)))
	return m
}

// StatusError is an IPP response whose status is not successful.
type StatusError struct {
	Op     goipp.Op
	Status goipp.Status
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%v: %v", e.Op, e.Status)
}

// Do sends the request, followed by the document read from doc if not nil,
// and returns the response. A response with an error status is returned
// with a *StatusError.
func (c *Client) Do(ctx context.Context, req *goipp.Message, doc io.Reader) (*goipp.Message, error) {
	target, err := HTTPURL(c.URI)
	if err != nil {
		return nil, err
	}
	head, err := req.EncodeBytes()
	if err != nil {
		return nil, err
	}
	body := io.Reader(bytes.NewReader(head))
	if doc != nil {
		body = io.MultiReader(body, doc)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, target, body)
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", goipp.ContentType)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	hresp, err := hc.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer hresp.Body.Close()
	if hresp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered HTTP %s", target, hresp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(hresp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxResponseBytes {
		return nil, errors.New("IPP response larger than 8 MiB")
	}
	var resp goipp.Message
	if err := resp.DecodeBytes(data); err != nil {
		return nil, fmt.Errorf("bad IPP response: %w", err)
	}
	if st := goipp.Status(resp.Code); st > goipp.StatusOkEventsComplete {
		return &resp, &StatusError{Op: goipp.Op(req.Code), Status: st}
	}
	return &resp, nil
}

// PrinterAttributes asks the printer for its attributes: the named ones, or
// all of them when names is empty.
func (c *Client) PrinterAttributes(ctx context.Context, names ...string) (goipp.Attributes, error) {
	req := c.NewRequest(goipp.OpGetPrinterAttributes)
	if len(names) == 0 {
		names = []string{"all"}
	}
	vals := make([]goipp.Value, len(names))
	for i, n := range names {
		vals[i] = goipp.String(n)
	}
	req.Operation.Add(goipp.MakeAttr("requested-attributes", goipp.TagKeyword, vals[0], vals[1:]...))
	resp, err := c.Do(ctx, req, nil)
	if err != nil {
		return nil, err
	}
	return resp.Printer, nil
}

// Find returns the values of the named attribute, or nil.
func Find(attrs goipp.Attributes, name string) goipp.Values {
	for _, a := range attrs {
		if a.Name == name {
			return a.Values
		}
	}
	return nil
}
