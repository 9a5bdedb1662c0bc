package broker

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/ingest"
	"github.com/relais-fr/relais/central/store"
)

// startClient runs a Client until the test ends and waits until it is
// subscribed.
func startClient(t testing.TB, o ClientOptions) *Client {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	c, err := NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	select {
	case <-c.Ready():
	case <-time.After(limit):
		t.Fatalf("client %s: not subscribed", o.ClientID)
	}
	return c
}

// TestClientSharedSubscription runs two replicas of central, each a Client
// with its own Ingester over one store, on Mosquitto with the shipped
// configuration: agents' events are split between the replicas, each
// committed once, and acked; a status and a command round trip work
// through the external broker too.
func TestClientSharedSubscription(t *testing.T) {
	agents := []string{"pi-1", "pi-2", "pi-3", "pi-4"}
	users := map[string]string{centralUser: "central-secret"}
	for _, a := range agents {
		users[Username(site, a)] = a + "-secret"
	}
	addr := shippedMosquitto(t, users)
	st := openStore(t)
	in1 := newIngester(t, st, ingest.Options{})
	in2 := newIngester(t, st, ingest.Options{})

	// Replica 1 has its credentials in the URL, replica 2 from the
	// environment, the password in a file.
	pwFile := filepath.Join(t.TempDir(), "broker-password")
	if err := os.WriteFile(pwFile, []byte(users[centralUser]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvUsername: centralUser, EnvPasswordFile: pwFile}
	c1 := startClient(t, ClientOptions{URL: "mqtt://" + centralUser + ":" + users[centralUser] + "@" + addr, ClientID: "central-1", Ingester: in1})
	startClient(t, ClientOptions{URL: "mqtt://" + addr, ClientID: "central-2", Ingester: in2,
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})

	const msgs, perMsg = 50, 4
	var wg sync.WaitGroup
	acks := make([]uint64, len(agents))
	var mu sync.Mutex
	for i, a := range agents {
		ac := dial(t, addr, a, Username(site, a), users[Username(site, a)], nil)
		if code := ac.subscribe(api.AckTopic(site, a)); code != 1 {
			t.Fatalf("%s: subscribe to its ack: %#x", a, code)
		}
		wg.Go(func() {
			for m := range msgs {
				if err := ac.publish(api.EventsTopic(site, a), eventsPayload(t, a, uint64(m*perMsg+1), perMsg)); err != nil {
					t.Error(err)
					return
				}
			}
			for {
				m := ac.next(a + "'s ack of every event")
				ack, err := api.DecodeAck(m.Payload())
				if err != nil {
					t.Errorf("%s: ack %q: %v", a, m.Payload(), err)
					return
				}
				mu.Lock()
				acks[i] = max(acks[i], ack.Upto)
				mu.Unlock()
				if ack.Upto == msgs*perMsg {
					return
				}
			}
		})
	}
	wg.Wait()
	for i, a := range agents {
		if s := agentState(t, st, site, a); s.Events != msgs*perMsg || s.Upto != msgs*perMsg || acks[i] != msgs*perMsg {
			t.Errorf("%s: %d events stored, upto %d, acked %d; want %d", a, s.Events, s.Upto, acks[i], msgs*perMsg)
		}
	}
	s1, s2 := in1.Stats(), in2.Stats()
	t.Logf("replica 1: %d messages, %d transactions; replica 2: %d messages, %d transactions", s1.Messages, s1.Transactions, s2.Messages, s2.Transactions)
	if s1.Messages == 0 || s2.Messages == 0 {
		t.Errorf("the replicas did not share the load: %d and %d messages", s1.Messages, s2.Messages)
	}
	if total := s1.Messages + s2.Messages; total != uint64(len(agents)*msgs) {
		t.Errorf("%d messages ingested, want %d: each exactly once", total, len(agents)*msgs)
	}
	if d := s1.Duplicates + s2.Duplicates; d != 0 || s1.Inserted+s2.Inserted != uint64(len(agents)*msgs*perMsg) {
		t.Errorf("%d inserted, %d duplicates", s1.Inserted+s2.Inserted, d)
	}

	// Status and a command round trip through the broker.
	a := dial(t, addr, "pi-1-cmd", Username(site, "pi-1"), users[Username(site, "pi-1")], nil)
	if code := a.subscribe(api.CommandFilter(site, "pi-1")); code != 1 {
		t.Fatalf("subscribe to commands: %#x", code)
	}
	birth, _ := api.Encode(api.Status{Online: true, Time: time.Now().UTC().Truncate(time.Millisecond), Version: "2.0.0", Health: api.HealthOK})
	if err := a.publish(api.StatusTopic(site, "pi-1"), birth); err != nil {
		t.Fatal(err)
	}
	if err := st.AddCommand(context.Background(), store.Command{Req: "req-test-page", Site: site, Agent: "pi-1", Name: api.CommandTestPage, By: "tech", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := c1.SendCommand(context.Background(), site, "pi-1", api.Command{Name: api.CommandTestPage, Req: "req-test-page"}); err != nil {
		t.Fatal(err)
	}
	m := a.next("the command")
	var cmd api.Command
	if m.Topic() != api.CommandTopic(site, "pi-1", api.CommandTestPage) || json.Unmarshal(m.Payload(), &cmd) != nil || cmd.Req != "req-test-page" {
		t.Fatalf("agent got %s %q", m.Topic(), m.Payload())
	}
	res, _ := api.Encode(api.CommandResult{Req: cmd.Req, OK: true})
	if err := a.publish(api.CommandResultTopic(site, "pi-1"), res); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the status and the command's result in the store", limit, func() bool {
		cs, err := st.Commands(context.Background(), site, "pi-1", 1)
		s := agentState(t, st, site, "pi-1")
		return err == nil && len(cs) == 1 && cs[0].OK && s.Status.Online && s.Status.Version == "2.0.0"
	})
}

// TestClientOptions checks the URL and credential rules.
func TestClientOptions(t *testing.T) {
	st := openStore(t)
	in := newIngester(t, st, ingest.Options{})
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("from-file\r\n"), 0o600)
	big := filepath.Join(t.TempDir(), "big")
	os.WriteFile(big, make([]byte, 8<<10), 0o600)
	cases := []struct {
		url      string
		env      map[string]string
		user, pw string
		ok       bool
	}{
		{"mqtt://broker.example.org:1883", nil, "", "", true},
		{"mqtts://u:p%40ss@broker.example.org:8883", map[string]string{EnvUsername: "ignored"}, "u", "p@ss", true},
		{"tcp://broker.example.org:1883", map[string]string{EnvUsername: "c", EnvPasswordFile: pwFile}, "c", "from-file", true},
		{"mqtt://broker.example.org:1883", map[string]string{EnvUsername: "c", EnvPassword: "env"}, "c", "env", true},
		{"mqtt://broker.example.org:1883", map[string]string{EnvPassword: "no user"}, "", "", false},
		{"mqtt://broker.example.org:1883", map[string]string{EnvUsername: "c", EnvPasswordFile: big}, "", "", false},
		{"mqtt://broker.example.org:1883", map[string]string{EnvUsername: "c", EnvPasswordFile: "/nonexistent"}, "", "", false},
		{"http://broker.example.org", nil, "", "", false},
		{"mqtt://", nil, "", "", false},
		{"mqtt://broker.example.org:1883/path", nil, "", "", false},
	}
	for _, c := range cases {
		o := ClientOptions{URL: c.url, Ingester: in, Logger: quiet, Env: func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }}
		u, err := parseURL(o.URL)
		if err == nil {
			err = credentials(&o, u)
		}
		if (err == nil) != c.ok {
			t.Errorf("%s %v: err %v, want ok %v", c.url, c.env, err, c.ok)
			continue
		}
		if err == nil && (o.Username != c.user || o.Password != c.pw) {
			t.Errorf("%s %v: user %q password %q, want %q %q", c.url, c.env, o.Username, o.Password, c.user, c.pw)
		}
		if _, err := NewClient(ClientOptions{URL: c.url, Ingester: in, Logger: quiet, Env: o.Env}); (err == nil) != c.ok {
			t.Errorf("NewClient %s: %v", c.url, err)
		}
	}
	if _, err := NewClient(ClientOptions{URL: "mqtt://h:1"}); err == nil {
		t.Error("NewClient without an Ingester")
	}
}
