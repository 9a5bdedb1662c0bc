package broker

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/peertest"
)

// centralUser is the user of relais-central in configs/mosquitto.acl.
const centralUser = "relais-central"

// shippedMosquitto runs Debian's mosquitto with configs/mosquitto.conf and
// configs/mosquitto.acl as shipped, a password file made by
// mosquitto_passwd for users (name → password), and only these changes to
// the configuration: the paths of the password and ACL files, the
// listeners (one on a free loopback port), and logging to stderr. It
// returns the address, host:port.
func shippedMosquitto(t testing.TB, users map[string]string) string {
	t.Helper()
	bin := peertest.Program(t, "mosquitto", "mosquitto")
	passwd := peertest.Program(t, "mosquitto_passwd", "mosquitto")
	root := peertest.RepoRoot(t)
	conf, err := os.ReadFile(filepath.Join(root, "configs", "mosquitto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	acl, err := os.ReadFile(filepath.Join(root, "configs", "mosquitto.acl"))
	if err != nil {
		t.Fatal(err)
	}
	// mosquitto started as root runs as the user mosquitto: it must be able
	// to read the files.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	aclPath := filepath.Join(dir, "relais.acl")
	if err := os.WriteFile(aclPath, acl, 0o644); err != nil {
		t.Fatal(err)
	}
	pwPath := filepath.Join(dir, "relais.passwd")
	if err := os.WriteFile(pwPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for u, pw := range users {
		if out, err := exec.Command(passwd, "-b", pwPath, u, pw).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %s: %v\n%s", u, err, out)
		}
	}
	os.Chmod(pwPath, 0o644)

	port := peertest.FreePort(t)
	text := string(conf)
	replace := func(old, new string) {
		t.Helper()
		if strings.Count(text, old) != 1 {
			t.Fatalf("configs/mosquitto.conf: want the line %q once", old)
		}
		text = strings.Replace(text, old, new, 1)
	}
	replace("\npassword_file /etc/mosquitto/relais.passwd\n", "\npassword_file "+pwPath+"\n")
	replace("\nacl_file /etc/mosquitto/relais.acl\n", "\nacl_file "+aclPath+"\n")
	i := strings.Index(text, "\nlistener ")
	if i < 0 {
		t.Fatal("configs/mosquitto.conf: no listener")
	}
	text = text[:i+1] + fmt.Sprintf("listener %d 127.0.0.1\nlog_dest stderr\nlog_type all\n", port)
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confPath)
	if err := peertest.StartAndWait(t, cmd, " running", 20*time.Second); err != nil {
		t.Fatalf("mosquitto with the shipped configuration: %v", err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// TestShippedMosquittoACL proves configs/mosquitto.conf and mosquitto.acl:
// agent pi-1's credentials publish and read its own topics, and can
// neither publish nor read anything of pi-2, nor log in with a will on
// pi-2's status; central reads what agents publish and writes acks and
// commands; nobody logs in without a password.
func TestShippedMosquittoACL(t *testing.T) {
	users := map[string]string{
		centralUser:             "central-secret",
		Username(site, agent):   "pi-1-secret",
		Username(site, "pi-2"):  "pi-2-secret",
		Username("autre", "pi"): "autre-secret",
	}
	addr := shippedMosquitto(t, users)

	if _, err := tryDial(t, addr, "anon", "", "", nil); err == nil {
		t.Error("anonymous login accepted")
	}
	if _, err := tryDial(t, addr, "bad", Username(site, agent), "pi-2-secret", nil); err == nil {
		t.Error("pi-1 logged in with pi-2's password")
	}
	central := dial(t, addr, "central", centralUser, users[centralUser], nil)
	for _, k := range []string{api.KindStatus, api.KindEvents, api.KindMetrics, api.KindCommandResult} {
		if code := central.subscribe(api.SharedFilter(k)); code != 1 {
			t.Fatalf("central: subscribe %s: code %#x", api.SharedFilter(k), code)
		}
	}

	// Wills: Mosquitto 2.0 checks a will when it publishes it. pi-1's
	// connection with a will on pi-2's status dies, then one with its own
	// will: central gets only pi-1's.
	for _, topic := range []string{api.StatusTopic(site, "pi-2"), api.StatusTopic(site, agent)} {
		conn := rawConnect(t, addr, Username(site, agent), users[Username(site, agent)], topic, api.OfflineWill(), 60)
		conn.Close() // no DISCONNECT: the will goes out
	}
	if m := central.next("pi-1's will"); m.Topic() != api.StatusTopic(site, agent) || string(m.Payload()) != string(api.OfflineWill()) {
		t.Errorf("central got %s %q, want pi-1's own will", m.Topic(), m.Payload())
	}
	a := dial(t, addr, "a", Username(site, agent), users[Username(site, agent)], nil)

	// Publishing: pi-2's topics first, then pi-1's own; in order on one
	// connection, so that when pi-1's arrive at central, pi-2's would
	// have arrived before.
	for _, k := range []string{api.KindStatus, api.KindEvents, api.KindMetrics, api.KindCommandResult} {
		a.publish(api.Root+"/"+site+"/pi-2/"+k, []byte("forged"))
	}
	a.publish(api.AckTopic(site, agent), []byte("forged"))
	a.publish(api.CommandTopic(site, "pi-2", api.CommandIdentify), []byte("forged"))
	for _, k := range []string{api.KindStatus, api.KindEvents, api.KindMetrics, api.KindCommandResult} {
		if err := a.publish(api.Root+"/"+site+"/"+agent+"/"+k, []byte("own "+k)); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{api.KindStatus, api.KindEvents, api.KindMetrics, api.KindCommandResult} {
		m := central.next("pi-1's " + k)
		if m.Topic() != api.Root+"/"+site+"/"+agent+"/"+k || string(m.Payload()) != "own "+k {
			t.Errorf("central got %s %q, want pi-1's own %s", m.Topic(), m.Payload(), k)
		}
	}

	// Reading: pi-1 subscribes to pi-2's ack and commands, to its own
	// events, and on a second connection to everything; then to its own
	// ack and commands. Central publishes to pi-2, then to pi-1: the
	// first messages pi-1 receives must be its own.
	for _, f := range []string{api.AckTopic(site, "pi-2"), api.CommandFilter(site, "pi-2"), api.EventsTopic(site, agent)} {
		code := a.subscribe(f)
		t.Logf("pi-1 subscribes to %s: SUBACK %#x", f, code)
	}
	w := dial(t, addr, "a-wildcard", Username(site, agent), users[Username(site, agent)], nil)
	t.Logf("pi-1 subscribes to relais/#: SUBACK %#x", w.subscribe("relais/#"))
	for _, f := range []string{api.AckTopic(site, agent), api.CommandFilter(site, agent)} {
		if code := a.subscribe(f); code != 1 {
			t.Errorf("pi-1: subscribe %s: code %#x", f, code)
		}
	}
	if err := central.publish(api.AckTopic(site, "pi-2"), []byte(`{"upto":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := central.publish(api.CommandTopic(site, "pi-2", api.CommandIdentify), []byte(`{"req":"b"}`)); err != nil {
		t.Fatal(err)
	}
	b := dial(t, addr, "b", Username(site, "pi-2"), users[Username(site, "pi-2")], nil)
	if err := b.publish(api.EventsTopic(site, "pi-2"), []byte("pi-2's own")); err != nil {
		t.Fatal(err)
	}
	if m := central.next("pi-2's events"); m.Topic() != api.EventsTopic(site, "pi-2") {
		t.Errorf("central got %s", m.Topic())
	}
	if err := central.publish(api.AckTopic(site, agent), []byte(`{"upto":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := central.publish(api.CommandTopic(site, agent, api.CommandRefresh), []byte(`{"req":"a"}`)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{api.AckTopic(site, agent), api.CommandTopic(site, agent, api.CommandRefresh)} {
		for _, c := range []*mqttClient{a, w} {
			if m := c.next(want); m.Topic() != want {
				t.Errorf("pi-1 received %s %q, want only its own %s", m.Topic(), m.Payload(), want)
			}
		}
	}
	// Central cannot publish as an agent either.
	central.publish(api.EventsTopic(site, agent), []byte("forged by central"))
	if err := a.publish(api.EventsTopic(site, agent), []byte("marker")); err != nil {
		t.Fatal(err)
	}
	if m := central.next("marker"); string(m.Payload()) != "marker" {
		t.Errorf("central received %s %q before the marker", m.Topic(), m.Payload())
	}
	for _, c := range []*mqttClient{a, w} {
		select {
		case m := <-c.msgs:
			t.Errorf("pi-1 received %s %q", m.Topic(), m.Payload())
		default:
		}
	}
}

// rawConnect logs in with MQTT 3.1.1 over a plain socket, with a will
// (QoS 1, retained) and keepalive (seconds), and returns the connection
// once accepted, so that the
// test can drop it without a DISCONNECT, as a vanished agent does.
func rawConnect(t testing.TB, addr, user, pw, willTopic string, will []byte, keepalive uint16) net.Conn {
	t.Helper()
	str := func(b []byte, s []byte) []byte {
		return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...)
	}
	body := str(nil, []byte("MQTT"))
	body = append(body, 4, 0x80|0x40|0x20|0x08|0x04|0x02) // level; user, password, will retain, QoS 1, will, clean
	body = binary.BigEndian.AppendUint16(body, keepalive)
	body = str(body, []byte(fmt.Sprintf("raw-%d", time.Now().UnixNano())))
	body = str(body, []byte(willTopic))
	body = str(body, will)
	body = str(body, []byte(user))
	body = str(body, []byte(pw))
	pk := []byte{0x10}
	for n := len(body); ; {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		pk = append(pk, b)
		if n == 0 {
			break
		}
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(limit))
	if _, err := conn.Write(append(pk, body...)); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil {
		t.Fatalf("CONNACK: %v", err)
	}
	if ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK % x: refused", ack)
	}
	return conn
}
