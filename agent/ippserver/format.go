package ippserver

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"io"
	"strings"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/printq"
)

// sniff tells a document's format from its first bytes, or returns "".
func sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return formatPDF
	case bytes.HasPrefix(head, []byte("RaS2")):
		return formatPWG
	case bytes.HasPrefix(head, []byte("UNIRAST\x00")):
		return formatURF
	case bytes.HasPrefix(head, []byte{0xff, 0xd8, 0xff}):
		return formatJPEG
	case bytes.HasPrefix(head, []byte("%!PS")):
		return formatPostScript
	}
	return ""
}

// declaredFormat returns document-format: the format the client names, as
// the printer spells it, or application/octet-stream (to be recognized
// from the data). A format the printer cannot print is refused.
func (c *call) declaredFormat(caps *capabilities) (string, *response) {
	v, found, resp := c.single("document-format", goipp.TagMimeType)
	if resp != nil || !found {
		return formatOctetStream, resp
	}
	f := v.String()
	if strings.EqualFold(f, formatOctetStream) {
		return formatOctetStream, nil
	}
	if adv, ok := caps.format(f); ok {
		return adv, nil
	}
	c.unsupportedValue(c.attrs["document-format"])
	return "", fail(goipp.StatusErrorDocumentFormatNotSupported,
		"%s documents cannot be printed on this printer (%s can)", truncate(f, 64), strings.Join(caps.formats, ", "))
}

// compression returns the compression operation attribute: none, deflate
// or gzip.
func (c *call) compression() (string, *response) {
	comp, resp := c.keyword("compression", "none")
	if resp != nil {
		return "", resp
	}
	switch comp {
	case "none", "deflate", "gzip":
		return comp, nil
	}
	c.unsupportedValue(c.attrs["compression"])
	return "", fail(goipp.StatusErrorCompressionNotSupported, "compression %q is not supported", truncate(comp, 32))
}

// document is the document data of a request, decompressed, bounded, and
// watched for errors, so that a failed Submit can be explained.
type document struct {
	raw     *errReader // the request body
	r       *bufio.Reader
	n, max  int64
	err     error // first error while reading, other than io.EOF
	inflate bool
}

var errTooLarge = errors.New("document too large")

func (d *document) Read(p []byte) (int, error) {
	if d.n > d.max {
		d.err = errTooLarge
		return 0, errTooLarge
	}
	if int64(len(p)) > d.max+1-d.n {
		p = p[:d.max+1-d.n]
	}
	n, err := d.r.Read(p)
	d.n += int64(n)
	if d.n > d.max {
		d.err = errTooLarge
		return n, errTooLarge
	}
	if err != nil && err != io.EOF && d.err == nil {
		d.err = err
	}
	return n, err
}

// errReader remembers the first error of the request body other than EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// hasData tells whether document data follows the IPP message.
func (c *call) hasData() bool {
	_, err := c.doc.Peek(1)
	return err == nil
}

// document prepares the document that follows the IPP message and tells its
// format: the declared one, or the one recognized from its first bytes for
// application/octet-stream.
func (c *call) document(caps *capabilities, declared, compression string) (*document, string, *response) {
	if compression == "none" && c.r.ContentLength > 0 && c.r.ContentLength-c.header > c.s.cfg.MaxJobBytes {
		return nil, "", c.tooLarge()
	}
	if !c.hasData() {
		return nil, "", fail(goipp.StatusErrorBadRequest, "the request has no document data")
	}
	raw := &errReader{r: c.doc}
	var src io.Reader = raw
	switch compression {
	case "gzip":
		z, err := gzip.NewReader(raw)
		if err != nil {
			return nil, "", fail(goipp.StatusErrorCompressionError, "the document is not valid gzip data")
		}
		src = z
	case "deflate":
		src = flate.NewReader(raw)
	}
	d := &document{raw: raw, r: bufio.NewReaderSize(src, 4096), max: c.s.cfg.MaxJobBytes, inflate: compression != "none"}
	head, err := d.r.Peek(8)
	if len(head) == 0 {
		if err != nil && err != io.EOF && raw.err == nil && d.inflate {
			return nil, "", fail(goipp.StatusErrorCompressionError, "the document's compressed data is corrupt")
		}
		return nil, "", fail(goipp.StatusErrorBadRequest, "the request has no document data")
	}
	if declared != formatOctetStream {
		return d, declared, nil
	}
	found := sniff(head)
	if found == "" {
		return nil, "", fail(goipp.StatusErrorDocumentFormatNotSupported,
			"the document's format was not recognized (this printer takes %s)", strings.Join(caps.formats, ", "))
	}
	adv, ok := caps.format(found)
	if !ok {
		return nil, "", fail(goipp.StatusErrorDocumentFormatNotSupported,
			"%s documents cannot be printed on this printer (%s can)", found, strings.Join(caps.formats, ", "))
	}
	return d, adv, nil
}

func (c *call) tooLarge() *response {
	return fail(goipp.StatusErrorRequestEntity, "documents are limited to %d MiB", c.s.cfg.MaxJobBytes>>20)
}

// queueError explains an error of the queue, or of reading the document
// that the queue was given.
func (c *call) queueError(err error, d *document) *response {
	switch {
	case errors.Is(err, printq.ErrTooLarge) || (d != nil && errors.Is(d.err, errTooLarge)):
		return c.tooLarge()
	case d != nil && d.raw.err != nil:
		return fail(goipp.StatusErrorBadRequest, "the document was cut short")
	case d != nil && d.err != nil && d.inflate:
		return fail(goipp.StatusErrorCompressionError, "the document's compressed data is corrupt")
	case errors.Is(err, printq.ErrQuota):
		return fail(goipp.StatusErrorNotPossible, "this site's daily page quota is reached: printing is possible again tomorrow")
	case errors.Is(err, printq.ErrStorageFull):
		// RFC 8011 section 6.5.6: "a disk full condition".
		return fail(goipp.StatusErrorTemporary, "no room is left to keep the job: try again later")
	case errors.Is(err, printq.ErrNotFound):
		return fail(goipp.StatusErrorNotFound, "no such job")
	case errors.Is(err, printq.ErrState):
		return fail(goipp.StatusErrorNotPossible, "not possible in the job's present state")
	case errors.Is(err, printq.ErrTicket):
		return fail(goipp.StatusErrorBadRequest, "the job's attributes cannot be kept")
	case errors.Is(err, printq.ErrClosed):
		return fail(goipp.StatusErrorServiceUnavailable, "the printer is stopping: try again in a moment")
	}
	c.s.log.Error("ipp: queue error", "op", c.op.String(), "err", err)
	return fail(goipp.StatusErrorInternal, "internal error")
}
