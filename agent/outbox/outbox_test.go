package outbox_test

import (
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/central/api"
)

// The outbox is the print queue's Recorder and Faults. The method sets of
// printq.Recorder and printq.Faults are copied here rather than imported so
// that this package's tests do not depend on the print queue's.
var _ interface {
	Record(e api.Event) error
	Raise(device api.Device, code string, severity api.Severity) error
	Clear(device api.Device, code string) error
} = (*outbox.Outbox)(nil)

// clock is an injected clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

var (
	quiet = slog.New(slog.DiscardHandler)
	// t0 is a quarter past ten in the morning, UTC, with nanoseconds that
	// the outbox truncates.
	t0 = time.Date(2026, 3, 10, 10, 15, 0, 123456789, time.UTC)
)

// open opens an outbox in a new temporary directory with the clock c and
// closes it at the end of the test; it returns the outbox and its path.
func open(t testing.TB, c *clock, opts outbox.Options) (*outbox.Outbox, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outbox.db")
	return reopen(t, path, c, opts), path
}

// reopen opens the outbox at path and closes it at the end of the test.
func reopen(t testing.TB, path string, c *clock, opts outbox.Options) *outbox.Outbox {
	t.Helper()
	if c != nil {
		opts.Now = c.Now
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	o, err := outbox.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func printed(pages int) api.Event {
	return api.Event{Type: api.EventPrintCompleted, Pages: new(pages), Sheets: new(pages), Source: api.SourcePC}
}

func record(t testing.TB, o *outbox.Outbox, e api.Event) api.Event {
	t.Helper()
	got, err := o.RecordEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func stats(t testing.TB, o *outbox.Outbox) outbox.Stats {
	t.Helper()
	s, err := o.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// all returns every undelivered event, in seq order.
func all(t testing.TB, o *outbox.Outbox) []api.Event {
	t.Helper()
	var es []api.Event
	var after uint64
	for {
		page, err := o.Pending(after, outbox.MaxList)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return es
		}
		es = append(es, page...)
		after = page[len(page)-1].Seq
	}
}

func checkAccounting(t testing.TB, o *outbox.Outbox) {
	t.Helper()
	if err := o.CheckAccounting(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenConfiguresSQLite(t *testing.T) {
	o, path := open(t, newClock(t0), outbox.Options{})
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"synchronous":  "2", // full
		"foreign_keys": "1",
		"auto_vacuum":  "2", // incremental
		"busy_timeout": "5000",
		"user_version": "2",
	} {
		got, err := o.Pragma(pragma)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
	o.Close()

	// A file written by a newer version is refused.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := outbox.Open(path, outbox.Options{Logger: quiet}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: %v, want an error saying newer", err)
	}
}

func TestOpenRefusesBadOptions(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		path string
		opts outbox.Options
	}{
		"small bound":     {filepath.Join(dir, "a.db"), outbox.Options{MaxBytes: outbox.MinMaxBytes - 1}},
		"negative bound":  {filepath.Join(dir, "b.db"), outbox.Options{MaxBytes: -1}},
		"empty path":      {"", outbox.Options{}},
		"query in path":   {filepath.Join(dir, "c.db?mode=ro"), outbox.Options{}},
		"missing dir":     {filepath.Join(dir, "nope", "d.db"), outbox.Options{}},
		"dir is not file": {filepath.Join(dir, "e.db", "f.db"), outbox.Options{}},
	} {
		if name == "dir is not file" {
			reopen(t, filepath.Join(dir, "e.db"), nil, outbox.Options{})
		}
		if o, err := outbox.Open(tc.path, tc.opts); err == nil {
			o.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

func TestRecordAssignsSeqIDAndTime(t *testing.T) {
	c := newClock(t0)
	o, _ := open(t, c, outbox.Options{})
	// Whatever the caller puts in Seq, ID and Time is replaced.
	in := printed(2)
	in.Seq, in.ID, in.Time = 99, "not-an-id", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var got []api.Event
	for range 3 {
		got = append(got, record(t, o, in))
		c.Add(time.Millisecond / 2) // IDs must increase even within one millisecond
	}
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Errorf("event %d: seq %d, want %d", i, e.Seq, i+1)
		}
		id, err := uuid.Parse(e.ID)
		if err != nil || id.Version() != 7 || id.Variant() != uuid.RFC4122 || id.String() != e.ID {
			t.Errorf("event %d: id %q is not a canonical UUIDv7 (%v)", i, e.ID, err)
		}
		if i > 0 && e.ID <= got[i-1].ID {
			t.Errorf("event %d: id %s not after %s", i, e.ID, got[i-1].ID)
		}
		want := t0.Add(time.Duration(i) * time.Millisecond / 2).Truncate(time.Millisecond)
		if !e.Time.Equal(want) || e.Time.Location() != time.UTC {
			t.Errorf("event %d: time %v, want %v in UTC", i, e.Time, want)
		}
		if err := e.Validate(); err != nil {
			t.Errorf("event %d: %v", i, err)
		}
	}
	stored, err := o.Pending(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(stored, got, eventsEqual) {
		t.Errorf("stored %+v\nwant %+v", stored, got)
	}
}

func eventsEqual(a, b api.Event) bool {
	ja, _ := api.Encode(a)
	jb, _ := api.Encode(b)
	return ja != nil && string(ja) == string(jb)
}

func TestRecordRefusesInvalidEvent(t *testing.T) {
	o, _ := open(t, newClock(t0), outbox.Options{})
	for name, e := range map[string]api.Event{
		"no type":        {},
		"missing pages":  {Type: api.EventPrintCompleted, Source: api.SourcePC},
		"sheets > pages": {Type: api.EventCopyCompleted, Pages: new(1), Sheets: new(2)},
		"forbidden day":  {Type: api.EventCopyCompleted, Pages: new(1), Day: "2026-03-10"},
		"bad reason":     {Type: api.EventScanFailed, Reason: "Job «secret.pdf» failed"},
	} {
		if err := o.Record(e); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("%s: Record = %v, want api.ErrInvalid", name, err)
		}
	}
	if s := stats(t, o); s.LastSeq != 0 {
		t.Errorf("refused events consumed seqs: last seq %d", s.LastSeq)
	}
	if e := record(t, o, printed(1)); e.Seq != 1 {
		t.Errorf("first valid event got seq %d, want 1", e.Seq)
	}
}

func TestRecordWithUnsetClock(t *testing.T) {
	c := newClock(time.Unix(0, 0)) // a Pi without RTC before NTP
	o, _ := open(t, c, outbox.Options{})
	if e := record(t, o, printed(1)); !e.Time.Equal(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("first event with the clock in 1970: time %v, want 2020-01-01", e.Time)
	}
	c.Set(t0)
	good := record(t, o, printed(1))
	c.Set(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	if e := record(t, o, printed(1)); !e.Time.Equal(good.Time) {
		t.Errorf("event with the clock in 2100: time %v, want the last one's %v", e.Time, good.Time)
	}
}

func TestRecordConcurrently(t *testing.T) {
	o, _ := open(t, newClock(t0), outbox.Options{})
	const workers, each = 8, 25
	seqs := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				e, err := o.RecordEvent(printed(1))
				if err != nil {
					t.Error(err)
					return
				}
				seqs[w] = append(seqs[w], e.Seq)
			}
		})
	}
	wg.Wait()
	var got []uint64
	for w, s := range seqs {
		if !slices.IsSorted(s) {
			t.Errorf("worker %d saw seqs out of order: %v", w, s)
		}
		got = append(got, s...)
	}
	slices.Sort(got)
	for i, s := range got {
		if s != uint64(i+1) {
			t.Fatalf("seqs are not 1..%d each once: %v", workers*each, got)
		}
	}
	es := all(t, o)
	if len(es) != workers*each {
		t.Fatalf("%d events stored, want %d", len(es), workers*each)
	}
	for i := 1; i < len(es); i++ {
		if es[i].Seq != es[i-1].Seq+1 || es[i].ID <= es[i-1].ID {
			t.Fatalf("events %d and %d: seq %d then %d, id %s then %s",
				i-1, i, es[i-1].Seq, es[i].Seq, es[i-1].ID, es[i].ID)
		}
	}
	cs, err := o.Counters(o.Today())
	if err != nil {
		t.Fatal(err)
	}
	if c := cs[api.EventPrintCompleted]; c.Count != workers*each || c.Pages != workers*each {
		t.Errorf("counters %+v, want %d events and pages", c, workers*each)
	}
	checkAccounting(t, o)
}

func TestReopenKeepsEverything(t *testing.T) {
	c := newClock(t0)
	o, path := open(t, c, outbox.Options{})
	for range 5 {
		record(t, o, printed(2))
	}
	if err := o.Raise(api.DevicePrinter, "media-empty", api.SeverityFault); err != nil {
		t.Fatal(err)
	}
	if err := o.Ack(2); err != nil {
		t.Fatal(err)
	}
	before := stats(t, o)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	o = reopen(t, path, c, outbox.Options{})
	after := stats(t, o)
	if after.LastSeq != 6 || after.LastAck != 2 || after.Depth != 4 || after.PendingBytes != before.PendingBytes {
		t.Errorf("after reopen: %+v, before %+v", after, before)
	}
	pending, err := o.Pending(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 4 || pending[0].Seq != 3 || pending[3].Type != api.EventFaultRaised {
		t.Errorf("pending after reopen: %+v", pending)
	}
	if e := record(t, o, printed(1)); e.Seq != 7 {
		t.Errorf("next seq after reopen: %d, want 7", e.Seq)
	}
	cs, err := o.Counters(o.Today())
	if err != nil {
		t.Fatal(err)
	}
	if c := cs[api.EventPrintCompleted]; c.Count != 6 || c.Pages != 11 {
		t.Errorf("counters after reopen: %+v, want 6 events, 11 pages", c)
	}
	checkAccounting(t, o)
}

func TestSeqNeverReusedAfterDeletes(t *testing.T) {
	c := newClock(t0)
	o, path := open(t, c, outbox.Options{KeepDelivered: -1})
	for range 3 {
		record(t, o, printed(1))
	}
	if err := o.Ack(3); err != nil {
		t.Fatal(err)
	}
	if es, err := o.Recent(10); err != nil || len(es) != 0 {
		t.Fatalf("Recent after acking everything with KeepDelivered -1: %v, %v", es, err)
	}
	o.Close()
	o = reopen(t, path, c, outbox.Options{KeepDelivered: -1})
	if e := record(t, o, printed(1)); e.Seq != 4 {
		t.Errorf("seq after deleting every row and reopening: %d, want 4", e.Seq)
	}
}
