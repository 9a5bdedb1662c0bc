package api_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/relais-fr/relais/central/api"
)

func ExampleEventsTopic() {
	fmt.Println(api.EventsTopic("mediatheque-nord", "pi-1"))
	fmt.Println(api.CommandTopic("mediatheque-nord", "pi-1", api.CommandIdentify))
	fmt.Println(api.SharedFilter(api.KindEvents))
	fmt.Println(api.CommandFilter("mediatheque-nord", "pi-1"))
	// Output:
	// relais/v1/mediatheque-nord/pi-1/events
	// relais/v1/mediatheque-nord/pi-1/cmd/identify
	// $share/relais-central/relais/v1/+/+/events
	// relais/v1/mediatheque-nord/pi-1/cmd/+
}

func ExampleParseTopic() {
	t, err := api.ParseTopic("relais/v1/mediatheque-nord/pi-1/cmd/test-page")
	fmt.Println(t.Site, t.Agent, t.Kind, t.Command, err)

	_, err = api.ParseTopic("relais/v1/mediatheque-nord/+/events")
	fmt.Println(errors.Is(err, api.ErrBadTopic), err)
	// Output:
	// mediatheque-nord pi-1 cmd test-page <nil>
	// true api: bad topic: agent must match ^[a-z0-9-]{1,63}$
}

func ExampleEncodeEvents() {
	e := api.Event{
		Seq:    42,
		ID:     "0195a3c2-5e00-7000-8000-00000000002a",
		Time:   time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC),
		Type:   api.EventCopyCompleted,
		Pages:  new(2),
		Sheets: new(1),
		Duplex: new(true),
	}
	b, err := api.EncodeEvents(e)
	fmt.Println(string(b), err)
	// Output:
	// {"seq":42,"id":"0195a3c2-5e00-7000-8000-00000000002a","ts":"2026-03-02T09:30:00Z","type":"copy.completed","pages":2,"sheets":1,"duplex":true} <nil>
}

func ExampleDecodeEvents() {
	payload := []byte(`{"events":[
		{"seq":7,"id":"0195a3c2-5e00-7001-8000-000000000007","ts":"2026-03-02T09:30:00Z","type":"button.pressed","gesture":"long"},
		{"seq":8,"id":"0195a3c2-5e00-7001-8000-000000000008","ts":"2026-03-02T09:31:00Z","type":"scan.completed","pages":3,"format":"application/pdf"}
	]}`)
	events, err := api.DecodeEvents(payload)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range events {
		switch e.Type {
		case api.EventButtonPressed:
			fmt.Println(e.Seq, e.Type, e.Gesture)
		case api.EventScanCompleted:
			fmt.Println(e.Seq, e.Type, *e.Pages, e.Format)
		}
	}
	// Output:
	// 7 button.pressed long
	// 8 scan.completed 3 application/pdf
}

func ExampleDecodeEvents_rejected() {
	// A usage event cannot carry a file name: there is no such field.
	payload := []byte(`{"seq":9,"id":"0195a3c2-5e00-7001-8000-000000000009","ts":"2026-03-02T09:32:00Z",` +
		`"type":"print.completed","pages":1,"source":"pc","file":"CV.pdf"}`)
	_, err := api.DecodeEvents(payload)
	var ve *api.ValidationError
	fmt.Println(errors.Is(err, api.ErrInvalid), errors.As(err, &ve), err)
	// Output:
	// true true unknown field "file"
}
