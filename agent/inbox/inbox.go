// Package inbox is the agent's short-lived scan inbox, in {storage.dir}/inbox:
// a visitor's scan waits there until the aidant downloads it from the local
// page, and never longer than the retention (15 minutes by default), across
// restarts too. Each scan is ID.scan (the document) beside ID.json (its
// metadata); both are written to temporary files, fsynced and renamed, the
// metadata last, so that a scan exists once it is durable and a crash leaves
// no half scan. Open removes what a crash left and every scan that expired
// while the agent was down, or whose age cannot be told because the clock
// went back (a Raspberry Pi has no battery clock). Run deletes each scan as
// it expires, by the injected Clock. With DeleteAfterDownload a scan is
// deleted as soon as it has been read to the end. IDs are 128 random bits:
// the page links to a scan by its ID, so it must not be guessable. Nothing
// but this package keeps a copy, and it logs no content.
package inbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults and bounds.
const (
	DefaultRetention     = 15 * time.Minute
	DefaultMaxBytes      = 256 << 20 // one scan
	DefaultMaxScans      = 100
	DefaultMaxTotalBytes = 1 << 30 // the whole inbox
	// MaxPages bounds Meta.Pages.
	MaxPages = 10000
	// retryAfter is when Run tries again to remove a file it could not.
	retryAfter = time.Minute
	// maxMetaBytes bounds a metadata file read by Open.
	maxMetaBytes = 4 << 10
	tmpPrefix    = ".tmp-"
	dataSuffix   = ".scan"
	metaSuffix   = ".json"
)

// Formats are the document formats a scan may have, with the file name
// extension the page offers it under.
var Formats = map[string]string{
	"application/pdf": ".pdf",
	"image/jpeg":      ".jpg",
	"image/png":       ".png",
}

// Errors.
var (
	ErrNotFound = errors.New("inbox: no such scan")
	ErrTooLarge = errors.New("inbox: scan larger than the limit")
	ErrFull     = errors.New("inbox: inbox full")
	ErrFormat   = errors.New("inbox: unsupported scan format")
)

// Clock is the inbox's time source; Run waits only through it, so that a
// test drives expiry with a clock of its own. It has the shape of
// printq.Clock.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once, when
	// d has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a single-shot timer made by a Clock.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// Options configure an Inbox. Zero values take the defaults.
type Options struct {
	Retention           time.Duration // [scans] retention; default 15 min
	DeleteAfterDownload bool          // [scans] delete_after_download
	MaxBytes            int64         // one scan; default 256 MiB
	MaxScans            int           // scans kept at once; default 100
	MaxTotalBytes       int64         // all scans; default 1 GiB
	Clock               Clock         // nil: the real clock
	Logger              *slog.Logger  // nil: slog.Default()
}

// Meta describes a scan being added.
type Meta struct {
	Pages  int    // 0 if unknown
	Format string // one of Formats; empty means application/pdf
}

// Scan is a scan in the inbox.
type Scan struct {
	ID      string // 32 lowercase hex digits
	Created time.Time
	Expires time.Time // deleted then at the latest
	Pages   int       // 0 if unknown
	Format  string    // MIME type, one of Formats
	Size    int64     // bytes
}

// record is the metadata file.
type record struct {
	Version int       `json:"v"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Pages   int       `json:"pages"`
	Format  string    `json:"format"`
	Size    int64     `json:"size"`
}

// Inbox is the scan inbox. Its methods are safe for concurrent use.
type Inbox struct {
	dir   string
	opts  Options
	clock Clock
	log   *slog.Logger

	mu       sync.Mutex
	scans    map[string]Scan
	adding   int             // Adds in progress, counted against MaxScans
	leftover map[string]bool // ids whose files could not be removed
	changed  chan struct{}   // cap 1: the next expiry may have changed
}

// Open opens the inbox in dir, creating it (mode 0700) if needed. It
// removes temporary files and half-written scans left by a crash, and the
// scans that expired while the agent was not running.
func Open(dir string, opts Options) (*Inbox, error) {
	switch {
	case opts.Retention < 0, opts.MaxBytes < 0, opts.MaxScans < 0, opts.MaxTotalBytes < 0:
		return nil, errors.New("inbox: negative option")
	}
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxScans == 0 {
		opts.MaxScans = DefaultMaxScans
	}
	if opts.MaxTotalBytes == 0 {
		opts.MaxTotalBytes = DefaultMaxTotalBytes
	}
	in := &Inbox{dir: dir, opts: opts, clock: opts.Clock, log: opts.Logger,
		scans: map[string]Scan{}, leftover: map[string]bool{}, changed: make(chan struct{}, 1)}
	if in.clock == nil {
		in.clock = realClock{}
	}
	if in.log == nil {
		in.log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	if err := in.load(); err != nil {
		return nil, err
	}
	return in, nil
}

// load reads the scans of the directory, keeping only those complete and
// not expired.
func (in *Inbox) load() error {
	ents, err := os.ReadDir(in.dir)
	if err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	now := in.clock.Now()
	ids := map[string]bool{}
	removed := 0
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			in.remove(name)
			removed++
			continue
		}
		id, ok := strings.CutSuffix(name, metaSuffix)
		if !ok {
			id, ok = strings.CutSuffix(name, dataSuffix)
		}
		if ok && ValidID(id) {
			ids[id] = true
		}
	}
	for id := range ids {
		s, err := in.loadScan(id)
		switch {
		case err != nil:
			in.log.Warn("inbox: removing an incomplete scan", "scan", short(id), "err", err)
		case s.Created.After(now):
			in.log.Warn("inbox: removing a scan dated after now: the clock went back, its age cannot be told", "scan", short(id))
		case !now.Before(s.Expires):
			in.log.Info("inbox: removing a scan that expired while the agent was stopped", "scan", short(id))
		default:
			in.scans[id] = s
			continue
		}
		if !in.removeScan(id) {
			in.leftover[id] = true
		}
		removed++
	}
	if removed > 0 {
		if err := syncDir(in.dir); err != nil {
			in.log.Warn("inbox: syncing the directory", "err", err)
		}
	}
	return nil
}

// loadScan reads the metadata of a scan and checks its document.
func (in *Inbox) loadScan(id string) (Scan, error) {
	f, err := os.Open(filepath.Join(in.dir, id+metaSuffix))
	if err != nil {
		return Scan{}, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxMetaBytes+1))
	f.Close()
	if err != nil {
		return Scan{}, err
	}
	if len(b) > maxMetaBytes {
		return Scan{}, errors.New("metadata too large")
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return Scan{}, err
	}
	if r.Version != 1 || Formats[r.Format] == "" || r.Pages < 0 || r.Pages > MaxPages || r.Created.IsZero() {
		return Scan{}, errors.New("bad metadata")
	}
	fi, err := os.Stat(filepath.Join(in.dir, id+dataSuffix))
	if err != nil {
		return Scan{}, err
	}
	if fi.Size() != r.Size {
		return Scan{}, fmt.Errorf("document of %d bytes, want %d", fi.Size(), r.Size)
	}
	exp := r.Created.Add(in.opts.Retention)
	if !r.Expires.IsZero() && r.Expires.Before(exp) {
		exp = r.Expires // kept under a shorter retention than today's
	}
	return Scan{ID: id, Created: r.Created, Expires: exp, Pages: r.Pages, Format: r.Format, Size: r.Size}, nil
}

// Retention is how long a scan is kept.
func (in *Inbox) Retention() time.Duration { return in.opts.Retention }

// DeleteAfterDownload reports whether a scan is deleted once downloaded.
func (in *Inbox) DeleteAfterDownload() bool { return in.opts.DeleteAfterDownload }

// Add stores a scan read from r, at most MaxBytes, and returns it. The scan
// exists, durably, when Add returns nil; on error nothing is left behind.
func (in *Inbox) Add(r io.Reader, meta Meta) (Scan, error) {
	if meta.Format == "" {
		meta.Format = "application/pdf"
	}
	if Formats[meta.Format] == "" {
		return Scan{}, fmt.Errorf("%w: %q", ErrFormat, meta.Format)
	}
	if meta.Pages < 0 || meta.Pages > MaxPages {
		return Scan{}, fmt.Errorf("inbox: %d pages is out of range", meta.Pages)
	}
	in.mu.Lock()
	if len(in.scans)+in.adding >= in.opts.MaxScans {
		in.mu.Unlock()
		return Scan{}, ErrFull
	}
	in.adding++
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.adding--
		in.mu.Unlock()
	}()

	id, err := newID()
	if err != nil {
		return Scan{}, err
	}
	size, err := in.writeData(id, r)
	if err != nil {
		return Scan{}, err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	var total int64
	for _, s := range in.scans {
		total += s.Size
	}
	if total+size > in.opts.MaxTotalBytes {
		in.removeScan(id)
		return Scan{}, ErrFull
	}
	now := in.clock.Now()
	s := Scan{ID: id, Created: now, Expires: now.Add(in.opts.Retention), Pages: meta.Pages, Format: meta.Format, Size: size}
	rec := record{Version: 1, Created: s.Created, Expires: s.Expires, Pages: s.Pages, Format: s.Format, Size: s.Size}
	b, err := json.Marshal(rec)
	if err == nil {
		err = in.writeMeta(id, b)
	}
	if err != nil {
		in.removeScan(id)
		return Scan{}, storageError(err)
	}
	in.scans[id] = s
	notify(in.changed)
	in.log.Info("inbox: scan added", "scan", short(id), "pages", s.Pages, "bytes", s.Size, "expires", s.Expires)
	return s, nil
}

// writeData streams the document to ID.scan, fsynced.
func (in *Inbox) writeData(id string, r io.Reader) (int64, error) {
	f, err := os.CreateTemp(in.dir, tmpPrefix)
	if err != nil {
		return 0, storageError(err)
	}
	tmp := f.Name()
	cr := &countReader{r: io.LimitReader(r, in.opts.MaxBytes+1)}
	n, err := io.Copy(f, cr)
	switch {
	case cr.err != nil:
		err = fmt.Errorf("inbox: reading the scan: %w", cr.err)
	case err != nil:
		err = storageError(err)
	case n > in.opts.MaxBytes:
		err = ErrTooLarge
	default:
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = storageError(cerr)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(in.dir, id+dataSuffix))
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return n, nil
}

// writeMeta durably writes ID.json, which makes the scan exist.
func (in *Inbox) writeMeta(id string, b []byte) error {
	f, err := os.CreateTemp(in.dir, tmpPrefix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(in.dir, id+metaSuffix))
	}
	if err == nil {
		err = syncDir(in.dir)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// List returns the scans not yet expired, newest first.
func (in *Inbox) List() []Scan {
	now := in.clock.Now()
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]Scan, 0, len(in.scans))
	for _, s := range in.scans {
		if now.Before(s.Expires) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Scan) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Open opens a scan's document for download. With DeleteAfterDownload, the
// scan is deleted when the reader is closed after it was read to the end; a
// download cut short leaves it for another try. An expired scan is deleted
// and reported as not found.
func (in *Inbox) Open(id string) (io.ReadCloser, Scan, error) {
	if !ValidID(id) {
		return nil, Scan{}, ErrNotFound
	}
	now := in.clock.Now()
	in.mu.Lock()
	s, ok := in.scans[id]
	if ok && !now.Before(s.Expires) {
		in.deleteLocked(id)
		ok = false
	}
	in.mu.Unlock()
	if !ok {
		return nil, Scan{}, ErrNotFound
	}
	f, err := os.Open(filepath.Join(in.dir, id+dataSuffix))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, Scan{}, ErrNotFound
		}
		return nil, Scan{}, fmt.Errorf("inbox: %w", err)
	}
	return &download{f: f, in: in, id: id}, s, nil
}

// download reads a scan, and deletes it once read when so configured.
type download struct {
	f    *os.File
	in   *Inbox
	id   string
	eof  bool
	once sync.Once
}

func (d *download) Read(p []byte) (int, error) {
	n, err := d.f.Read(p)
	if err == io.EOF {
		d.eof = true
	}
	return n, err
}

func (d *download) Close() error {
	err := d.f.Close()
	d.once.Do(func() {
		if d.eof && d.in.opts.DeleteAfterDownload {
			if derr := d.in.Delete(d.id); derr == nil {
				d.in.log.Info("inbox: scan deleted after download", "scan", short(d.id))
			}
		}
	})
	return err
}

// Delete deletes a scan now.
func (in *Inbox) Delete(id string) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, ok := in.scans[id]; !ok {
		return ErrNotFound
	}
	in.deleteLocked(id)
	return nil
}

// DeleteAll deletes every scan (central's purge-scans) and returns how many
// it deleted.
func (in *Inbox) DeleteAll() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := len(in.scans)
	for id := range in.scans {
		in.deleteLocked(id)
	}
	return n
}

// deleteLocked forgets a scan and removes its files. Callers hold mu.
func (in *Inbox) deleteLocked(id string) {
	delete(in.scans, id)
	if !in.removeScan(id) {
		in.leftover[id] = true
		notify(in.changed)
	}
	if err := syncDir(in.dir); err != nil {
		in.log.Warn("inbox: syncing the directory", "err", err)
	}
}

// removeScan removes a scan's files, the metadata first so that the scan
// ceases to exist at once; it reports whether both are gone.
func (in *Inbox) removeScan(id string) bool {
	a := in.remove(id + metaSuffix)
	b := in.remove(id + dataSuffix)
	return a && b
}

// remove removes a file of the inbox and reports whether it is gone.
func (in *Inbox) remove(name string) bool {
	err := os.Remove(filepath.Join(in.dir, name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		in.log.Error("inbox: cannot remove a file", "file", name, "err", err)
		return false
	}
	return true
}

// Purge deletes the scans that have expired, tries again to remove the files
// it could not before, and returns how many scans it deleted.
func (in *Inbox) Purge() int {
	n, _ := in.purge()
	return n
}

// purge is Purge, also returning when the next scan expires (zero if none).
func (in *Inbox) purge() (int, time.Time) {
	now := in.clock.Now()
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for id := range in.leftover {
		if in.removeScan(id) {
			delete(in.leftover, id)
		}
	}
	var next time.Time
	for id, s := range in.scans {
		if !now.Before(s.Expires) {
			in.deleteLocked(id)
			n++
			continue
		}
		if next.IsZero() || s.Expires.Before(next) {
			next = s.Expires
		}
	}
	if len(in.leftover) > 0 && (next.IsZero() || now.Add(retryAfter).Before(next)) {
		next = now.Add(retryAfter)
	}
	if n > 0 {
		in.log.Info("inbox: expired scans deleted", "count", n)
	}
	return n, next
}

// Run deletes each scan when it expires, until ctx ends; it then returns
// nil.
func (in *Inbox) Run(ctx context.Context) error {
	for {
		_, next := in.purge()
		var fire <-chan time.Time
		var t Timer
		if !next.IsZero() {
			t = in.clock.NewTimer(next.Sub(in.clock.Now()))
			fire = t.C()
		}
		select {
		case <-ctx.Done():
		case <-fire:
		case <-in.changed:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// ValidID reports whether s has the form of a scan ID.
func ValidID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("inbox: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// short is the part of an ID that logs show: enough to follow a scan, not
// enough to fetch it.
func short(id string) string { return id[:8] }

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

type countReader struct {
	r   io.Reader
	err error
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// storageError marks a full disk as ErrFull.
func storageError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %v", ErrFull, err)
	}
	return err
}
