package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/peertest"
)

// TestReportsToCentral runs the agent against a real mosquitto and plays
// central: the retained status says online, a print's usage event arrives
// and is acked, and central's commands get their results.
func TestReportsToCentral(t *testing.T) {
	broker := peertest.Mosquitto(t, "allow_anonymous true")
	printer := peertest.IPPEvePrinter(t, peertest.IPPEveOptions{})
	agent := startAgent(t, printer.URI, "mqtt.broker=mqtt://"+broker)

	var (
		mu       sync.Mutex
		payloads = map[string][]string{} // topic kind → payloads
	)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + broker).SetClientID("central-test"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	tok := c.Subscribe("relais/v1/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		tp, err := api.ParseTopic(m.Topic())
		if err != nil {
			return
		}
		mu.Lock()
		payloads[tp.Kind] = append(payloads[tp.Kind], string(m.Payload()))
		mu.Unlock()
		if tp.Kind == api.KindEvents {
			evs, err := api.DecodeEvents(m.Payload())
			if err == nil && len(evs) > 0 {
				ack, _ := api.Encode(api.Ack{Upto: evs[len(evs)-1].Seq})
				c.Publish(api.AckTopic(tp.Site, tp.Agent), 1, false, ack)
			}
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	has := func(kind, part string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range payloads[kind] {
				if strings.Contains(p, part) {
					return true
				}
			}
			return false
		}
	}
	agent.waitFor("online status", 30*time.Second, has(api.KindStatus, `"online":true`))

	if err := submit(agent.URI, markedPDF("central")); err != nil {
		t.Fatal(err)
	}
	agent.waitFor("print.completed at central", 60*time.Second, has(api.KindEvents, `"type":"print.completed"`))
	agent.waitFor("events acked", 30*time.Second, func() bool {
		d := agent.status()
		return d.Outbox.Depth == 0 && d.Outbox.LastAck > 0
	})

	for name, want := range map[string]string{
		api.CommandIdentify:   `"ok":true`,
		api.CommandRefresh:    `"ok":true`,
		"self-destruct":       `"ok":false`,
		api.CommandPurgeScans: `"ok":true`,
	} {
		req := strings.ReplaceAll("req-"+name, "_", "-")
		c.Publish(api.CommandTopic("ccas-nord", "pi-1", name), 1, false, fmt.Sprintf(`{"req":%q}`, req))
		agent.waitFor("result of "+name, 30*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range payloads[api.KindCommandResult] {
				var r map[string]any
				if json.Unmarshal([]byte(p), &r) == nil && r["req"] == req {
					return strings.Contains(p, want)
				}
			}
			return false
		})
	}

	// Nothing central received names the document or its user.
	mu.Lock()
	defer mu.Unlock()
	for kind, ps := range payloads {
		for _, p := range ps {
			if strings.Contains(p, "attestation") || strings.Contains(p, "aidant") {
				t.Errorf("%s payload names the job or its user: %s", kind, p)
			}
		}
	}
}
