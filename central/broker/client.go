package broker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/ingest"
)

// Environment variables of the external broker's credentials, read when
// neither ClientOptions nor the URL give them. They are named like the
// configuration overrides, but the configuration has no such keys: secrets
// stay out of the configuration file.
const (
	EnvUsername     = "RELAIS_BROKER_USERNAME"
	EnvPasswordFile = "RELAIS_BROKER_PASSWORD_FILE" // a file holding the password
	EnvPassword     = "RELAIS_BROKER_PASSWORD"
)

// Bounds of the Client.
const (
	clientWait        = 10 * time.Second // connect, SUBACK, PUBACK of a command
	maxPasswordFile   = 4 << 10
	clientMaxBackoff  = 30 * time.Second
	clientMaxInflight = 64 // acks published and not yet acknowledged
)

// ClientOptions configures a Client.
type ClientOptions struct {
	// URL is the external broker: mqtt://host:1883 or mqtts://host:8883
	// (also tcp://, ssl://, tls://). A user and password in the URL
	// (mqtts://relais-central:secret@host:8883) are the credentials
	// unless Username and Password are set; without either, they come
	// from $RELAIS_BROKER_USERNAME and the file named by
	// $RELAIS_BROKER_PASSWORD_FILE (or $RELAIS_BROKER_PASSWORD).
	URL                string
	Username, Password string
	// TLSConfig for mqtts://; nil means the system's roots.
	TLSConfig *tls.Config
	// ClientID; empty means relais-central-{hostname}-{random}, unique
	// per process, as the session is clean.
	ClientID string
	Ingester *ingest.Ingester
	Logger   *slog.Logger // nil means slog.Default()
	// Env reads the environment; nil means os.LookupEnv.
	Env func(string) (string, bool)
}

// Client is relais-central's connection to an external broker. It
// subscribes with the shared filters of api.SharedFilter, so that the
// replicas of central connected to the same broker split the agents'
// messages, hands each message to the Ingester (with no identity: the
// broker's ACL restricted each agent to its own topics, and the topic
// must still parse), publishes the acks, and sends commands.
//
// Delivery: the session is clean, so a replica that stops leaves nothing
// queued for it; the subscriptions are made again at every connection.
// Acknowledgements are manual: paho sends a message's PUBACK once the
// Ingester has committed or refused it, so the broker's window of
// unacknowledged messages (max_inflight_messages in Mosquitto) is the
// back-pressure of a busy store; while the Ingester's queue is full, the
// Client stops reading, and the broker queues (max_queued_messages, which
// configs/mosquitto.conf raises: beyond it Mosquitto drops messages). A
// message whose store write failed is acknowledged all the same: with a
// clean session the broker would not send it again. Events are not lost
// that way (the agent sends unacked events again after its ack timeout);
// a status or metrics snapshot is, until the agent's next one. PUBACKs go
// out in the order the Ingester finishes, which with several agents is
// not the order of arrival; brokers accept that. The messages of one agent
// are committed in order by one replica, but two replicas may each get
// some of them: the order of an agent's status messages across replicas
// is not guaranteed (a will and the next birth are seconds apart in
// practice).
type Client struct {
	o     ClientOptions
	in    *ingest.Ingester
	log   *slog.Logger
	pc    paho.Client
	ready chan struct{}
	once  sync.Once
	runMu sync.Mutex
	run   bool
}

// NewClient checks the options and returns a Client; Serve connects.
func NewClient(o ClientOptions) (*Client, error) {
	if o.Ingester == nil {
		return nil, errors.New("broker: Client needs an Ingester")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Env == nil {
		o.Env = os.LookupEnv
	}
	u, err := parseURL(o.URL)
	if err != nil {
		return nil, err
	}
	tlsScheme := u.Scheme != "mqtt" && u.Scheme != "tcp"
	if err := credentials(&o, u); err != nil {
		return nil, err
	}
	if o.ClientID == "" {
		host, _ := os.Hostname()
		var r [4]byte
		rand.Read(r[:])
		o.ClientID = clip("relais-central-"+host, 40) + "-" + hex.EncodeToString(r[:])
	}
	u.User = nil
	c := &Client{o: o, in: o.Ingester, log: o.Logger.With("part", "broker-client"), ready: make(chan struct{})}

	opts := paho.NewClientOptions().
		AddBroker(u.String()).
		SetClientID(o.ClientID).
		SetCleanSession(true).
		SetOrderMatters(true). // onMessage only queues: it may wait, never for long
		SetAutoAckDisabled(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(clientMaxBackoff).
		SetConnectTimeout(clientWait).
		SetKeepAlive(30 * time.Second).
		SetWriteTimeout(clientWait).
		SetMaxResumePubInFlight(clientMaxInflight).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.log.Warn("connection to the broker lost; reconnecting", "err", err)
		})
	if o.Username != "" {
		opts.SetUsername(o.Username)
		opts.SetPassword(o.Password)
	}
	if tlsScheme {
		tc := o.TLSConfig
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		opts.SetTLSConfig(tc)
	}
	c.pc = paho.NewClient(opts)
	return c, nil
}

// parseURL parses and checks the broker's URL.
func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("broker: url: %w", err)
	}
	switch u.Scheme {
	case "mqtt", "tcp", "mqtts", "ssl", "tls":
	default:
		return nil, fmt.Errorf("broker: url %q: want mqtt://host:1883 or mqtts://host:8883", u.Redacted())
	}
	if u.Host == "" || u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Errorf("broker: url %q: want mqtt://host:1883 or mqtts://host:8883", u.Redacted())
	}
	return u, nil
}

// credentials fills o.Username and o.Password from the URL or the
// environment when they are empty.
func credentials(o *ClientOptions, u *url.URL) error {
	if o.Username != "" {
		return nil
	}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
		return nil
	}
	o.Username, _ = o.Env(EnvUsername)
	if f, ok := o.Env(EnvPasswordFile); ok && f != "" {
		fi, err := os.Stat(f)
		if err != nil {
			return fmt.Errorf("broker: %s: %w", EnvPasswordFile, err)
		}
		if fi.Size() > maxPasswordFile {
			return fmt.Errorf("broker: %s: %s is larger than %d bytes; is it a password file?", EnvPasswordFile, f, maxPasswordFile)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("broker: %s: %w", EnvPasswordFile, err)
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	} else {
		o.Password, _ = o.Env(EnvPassword)
	}
	if o.Password != "" && o.Username == "" {
		return fmt.Errorf("broker: a password without a username; set %s", EnvUsername)
	}
	return nil
}

// Ready is closed once the Client is connected and subscribed for the
// first time.
func (c *Client) Ready() <-chan struct{} { return c.ready }

// Serve connects (retrying with backoff until it succeeds) and ingests the
// agents' messages until ctx is done, then disconnects. It may be called
// once.
func (c *Client) Serve(ctx context.Context) error {
	c.runMu.Lock()
	if c.run {
		c.runMu.Unlock()
		return errors.New("broker: Serve called twice")
	}
	c.run = true
	c.runMu.Unlock()
	c.pc.Connect() // with ConnectRetry, it retries in the background
	<-ctx.Done()
	c.pc.Disconnect(250)
	return nil
}

// onConnect subscribes, on every connection: the session is clean.
func (c *Client) onConnect(pc paho.Client) {
	filters := map[string]byte{}
	for _, k := range []string{api.KindStatus, api.KindEvents, api.KindMetrics, api.KindCommandResult} {
		filters[api.SharedFilter(k)] = 1
	}
	tok := pc.SubscribeMultiple(filters, c.onMessage)
	if !tok.WaitTimeout(clientWait) || tok.Error() != nil {
		// The connection is failing: paho notices and connects again.
		c.log.Error("subscribing at the broker", "err", tokenError(tok))
		return
	}
	for f, q := range tok.(*paho.SubscribeToken).Result() {
		if q > 2 {
			c.log.Error("the broker refused a subscription: check its ACL for central's user", "filter", f, "code", q)
			return
		}
	}
	c.log.Info("connected to the broker", "broker", c.o.URL, "client", c.o.ClientID)
	c.once.Do(func() { close(c.ready) })
}

// onMessage queues a message for the Ingester. It runs on paho's router
// goroutine and waits only while the Ingester's queue is full.
func (c *Client) onMessage(_ paho.Client, m paho.Message) {
	err := c.in.Submit(context.Background(), ingest.Identity{}, m.Topic(), m.Payload(), func(r *ingest.Reply, err error) {
		if r != nil {
			// Not waited for: a lost ack is made up for by the next one,
			// or by the agent sending its events again.
			c.pc.Publish(r.Topic, 1, false, r.Payload)
		}
		m.Ack()
	})
	if err != nil { // the Ingester is closed: central is stopping
		c.log.Warn("message not ingested", "topic", clip(m.Topic(), 200), "err", err)
	}
}

// SendCommand publishes a command to an agent (QoS 1, on
// api.CommandTopic) and waits for the broker's PUBACK. The caller records
// it first (store.AddCommand). The broker does not say whether the agent
// is connected: without a result, the command did not arrive.
func (c *Client) SendCommand(ctx context.Context, site, agent string, cmd api.Command) error {
	payload, err := encodeCommand(site, agent, cmd)
	if err != nil {
		return err
	}
	tok := c.pc.Publish(api.CommandTopic(site, agent, cmd.Name), 1, false, payload)
	t := time.NewTimer(clientWait)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("broker: no PUBACK for the command in %v", clientWait)
	}
}

func tokenError(tok paho.Token) error {
	if err := tok.Error(); err != nil {
		return err
	}
	return fmt.Errorf("no answer in %v", clientWait)
}

// clip shortens s to at most n bytes, for logs.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
