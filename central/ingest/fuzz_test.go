package ingest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/relais-fr/relais/central/api"
)

// FuzzHandle feeds hostile topics and payloads, from an authenticated agent
// or none, to an Ingester over a real SQLite store. Whatever comes in,
// Handle answers: nil (committed), or a *RejectedError with one of the
// reasons, counted once in the store and in Stats; never a store error,
// never a panic. Only an events message is answered with a reply, the ack
// of its own agent. The seed corpus is in testdata/fuzz/FuzzHandle.
func FuzzHandle(f *testing.F) {
	f.Add("relais/v1/mairie-test/pi-1/events", []byte(`{"seq":1,"id":"0195a3c2-5e00-7000-8000-000000000001","ts":"2026-03-02T09:30:00Z","type":"button.pressed","gesture":"short"}`), true)
	f.Add("relais/v1/mairie-test/pi-1/status", []byte(`{"online":false}`), false)
	f.Add("relais/v1/mairie-test/pi-2/metrics", []byte(`{"ts":"2026-03-02T09:30:00Z"}`), true)
	f.Add("relais/v1/mairie-test/pi-1/ack", []byte(`{"upto":1}`), false)
	st := openStore(f)
	in := newIngester(f, Options{Store: st})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, topic string, payload []byte, authenticated bool) {
		var from Identity
		if authenticated {
			from = me
		}
		before := in.Stats().Rejected
		stored, err := st.Rejections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r, err := in.Handle(ctx, from, topic, payload)
		after := in.Stats().Rejected
		storedAfter, serr := st.Rejections(ctx)
		if serr != nil {
			t.Fatal(serr)
		}
		var re *RejectedError
		switch {
		case err == nil:
			for _, reason := range Reasons() {
				if after[reason] != before[reason] || storedAfter[reason] != stored[reason] {
					t.Errorf("accepted, yet a rejection was counted (%s)", reason)
				}
			}
		case errors.As(err, &re):
			if !slices.Contains(Reasons(), re.Reason) {
				t.Fatalf("unknown reason %q", re.Reason)
			}
			for _, reason := range Reasons() {
				want := uint64(0)
				if reason == re.Reason {
					want = 1
				}
				if after[reason]-before[reason] != want || uint64(storedAfter[reason]-stored[reason]) != want {
					t.Errorf("refused as %s: %s counted %d times in Stats, %d in the store; want %d",
						re.Reason, reason, after[reason]-before[reason], storedAfter[reason]-stored[reason], want)
				}
			}
			if r != nil {
				t.Errorf("refused with a reply %+v", r)
			}
			if len(payload) > 40 && len(err.Error()) > 400 {
				t.Errorf("error of %d bytes: it should not quote the payload", len(err.Error()))
			}
			return
		default:
			t.Fatalf("neither committed nor refused: %v", err)
		}
		tp, perr := api.ParseTopic(topic)
		if perr != nil {
			t.Fatalf("accepted a bad topic %q: %v", topic, perr)
		}
		if authenticated && (tp.Site != me.Site || tp.Agent != me.Agent) {
			t.Fatalf("accepted %q from %s", topic, me)
		}
		if tp.Kind != api.KindEvents {
			if r != nil {
				t.Errorf("a reply to %s", tp.Kind)
			}
			return
		}
		if _, err := api.DecodeEvents(payload); err != nil {
			t.Fatalf("accepted events the decoder refuses: %v", err)
		}
		if r != nil && (r.Topic != api.AckTopic(tp.Site, tp.Agent) || r.Upto == 0) {
			t.Errorf("reply %+v to %s", r, topic)
		}
	})
}
