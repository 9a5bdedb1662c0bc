package outbox_test

import (
	"testing"
	"time"

	"github.com/relais-fr/relais/agent/outbox"
	"github.com/relais-fr/relais/central/api"
)

func counters(t *testing.T, o *outbox.Outbox, day string) map[api.EventType]outbox.Counter {
	t.Helper()
	cs, err := o.Counters(day)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestCountersCrossLocalMidnight counts per local day: two hours east of
// UTC, midnight comes while UTC is still on the previous day.
func TestCountersCrossLocalMidnight(t *testing.T) {
	zone := time.FixedZone("UTC+2", 2*60*60)
	c := newClock(time.Date(2026, 6, 30, 23, 59, 0, 0, zone))
	o, path := open(t, c, outbox.Options{Location: zone})
	if o.Today() != "2026-06-30" {
		t.Fatalf("today %s, want 2026-06-30", o.Today())
	}
	record(t, o, api.Event{Type: api.EventPrintCompleted, Pages: new(4), Sheets: new(2), Bytes: new(int64(1000)), Source: api.SourcePC})
	record(t, o, api.Event{Type: api.EventCopyCompleted, Pages: new(1)})

	c.Add(2 * time.Minute) // 00:01 local, 22:01 UTC the day before
	if o.Today() != "2026-07-01" {
		t.Fatalf("today %s, want 2026-07-01", o.Today())
	}
	record(t, o, api.Event{Type: api.EventPrintCompleted, Pages: new(3), Source: api.SourcePhone})
	record(t, o, api.Event{Type: api.EventPrintCompleted, Pages: new(5), Sheets: new(3), Source: api.SourcePC})
	record(t, o, api.Event{Type: api.EventScanCompleted, Pages: new(2), Format: "application/pdf", Bytes: new(int64(50000))})
	// wifi.daily counts on the day it describes.
	record(t, o, api.Event{Type: api.EventWiFiDaily, Day: "2026-06-30", Visitors: new(17)})

	want := map[string]map[api.EventType]outbox.Counter{
		"2026-06-30": {
			api.EventPrintCompleted: {Count: 1, Pages: 4, Sheets: 2, Bytes: 1000},
			api.EventCopyCompleted:  {Count: 1, Pages: 1},
			api.EventWiFiDaily:      {Count: 1, Visitors: 17},
		},
		"2026-07-01": {
			api.EventPrintCompleted: {Count: 2, Pages: 8, Sheets: 3},
			api.EventScanCompleted:  {Count: 1, Pages: 2, Bytes: 50000},
		},
		"2026-07-02": {},
	}
	check := func(o *outbox.Outbox) {
		t.Helper()
		for day, w := range want {
			got := counters(t, o, day)
			if len(got) != len(w) {
				t.Errorf("%s: %+v, want %+v", day, got, w)
			}
			for typ, c := range w {
				if got[typ] != c {
					t.Errorf("%s %s: %+v, want %+v", day, typ, got[typ], c)
				}
			}
		}
	}
	check(o)
	o.Close()
	check(reopen(t, path, c, outbox.Options{Location: zone}))
}

func TestCountersForgetOldDays(t *testing.T) {
	c := newClock(t0)
	o, _ := open(t, c, outbox.Options{Location: time.UTC})
	first := o.Today()
	record(t, o, printed(1))
	c.Add(outbox.CounterDays * 24 * time.Hour)
	record(t, o, printed(1))
	if got := counters(t, o, first); got[api.EventPrintCompleted].Count != 1 {
		t.Errorf("%s, exactly %d days ago: %+v, want kept", first, outbox.CounterDays, got)
	}
	c.Add(24 * time.Hour)
	record(t, o, printed(1))
	if got := counters(t, o, first); len(got) != 0 {
		t.Errorf("%s, %d days ago: %+v, want forgotten", first, outbox.CounterDays+1, got)
	}
}

func TestCountersDefaultToLocalTime(t *testing.T) {
	c := newClock(t0)
	o, _ := open(t, c, outbox.Options{})
	if got, want := o.Today(), t0.In(time.Local).Format(time.DateOnly); got != want {
		t.Errorf("Today %s, want %s (time.Local is %s)", got, want, time.Local)
	}
	if _, err := o.Counters("10/03/2026"); err == nil {
		t.Error("Counters accepted a day that is not YYYY-MM-DD")
	}
}
