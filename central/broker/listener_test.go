package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/ingest"
)

// waitClosed waits until the broker closes conn.
func waitClosed(t *testing.T, conn net.Conn, what string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(limit))
	_, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("%s: still open after %v", what, limit)
	}
}

// TestConnectionBounds: a connection that sends no CONNECT is closed after
// ConnectTimeout, one over MaxConnections at once, and a logged-in client
// that asked for no keepalive gets MaxKeepAlive.
func TestConnectionBounds(t *testing.T) {
	st := openStore(t)
	in := newIngester(t, st, ingest.Options{})
	b := startBroker(t, st, in, Options{ConnectTimeout: 300 * time.Millisecond, MaxKeepAlive: time.Second})
	conn, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitClosed(t, conn, "a connection without CONNECT")

	pw := addAgent(t, st, site, agent)
	raw := rawConnect(t, b.Addr().String(), Username(site, agent), pw, api.StatusTopic(site, agent), api.OfflineWill(), 0)
	waitClosed(t, raw, "a silent client with keepalive 0")

	b2 := startBroker(t, st, in, Options{MaxConnections: 2, ConnectTimeout: limit})
	for range 2 {
		c, err := net.Dial("tcp", b2.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// The two are accepted in order; the third finds no room.
	waitFor(t, "two connections accepted", limit, func() bool { return len(b2.lns[0].sem) == 2 })
	third, err := net.Dial("tcp", b2.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	waitClosed(t, third, "a connection over MaxConnections")
	if b2.refused.Load() != 1 {
		t.Errorf("%d refused, want 1", b2.refused.Load())
	}
}

// TestTLS logs an agent in over the TLS listener with a certificate signed
// by a test CA, which the client trusts.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Relais test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "central"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "central.pem"), filepath.Join(dir, "central.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)

	st := openStore(t)
	in := newIngester(t, st, ingest.Options{})
	if _, err := New(Options{TLSListen: "127.0.0.1:0", CertFile: certFile, KeyFile: filepath.Join(dir, "none"), Store: st, Ingester: in}); err == nil {
		t.Error("New with a missing key file")
	}
	b := startBroker(t, st, in, Options{TLSListen: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile})
	pw := addAgent(t, st, site, agent)
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	c := paho.NewClient(paho.NewClientOptions().AddBroker("mqtts://" + b.TLSAddr().String()).
		SetClientID("tls").SetUsername(Username(site, agent)).SetPassword(pw).SetProtocolVersion(4).
		SetTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(limit) || tok.Error() != nil {
		t.Fatalf("TLS login: %v", tok.Error())
	}
	defer c.Disconnect(0)
	if tok := c.Publish(api.StatusTopic(site, agent), 1, true, api.OfflineWill()); !tok.WaitTimeout(limit) || tok.Error() != nil {
		t.Fatalf("publish over TLS: %v", tok.Error())
	}
	if s := agentState(t, st, site, agent); s.StatusAt.IsZero() {
		t.Error("status over TLS not stored")
	}
	// A client that does not trust the certificate gets nowhere.
	bad := paho.NewClient(paho.NewClientOptions().AddBroker("mqtts://" + b.TLSAddr().String()).
		SetClientID("tls-bad").SetUsername(Username(site, agent)).SetPassword(pw).SetProtocolVersion(4).
		SetTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}).SetAutoReconnect(false))
	if tok := bad.Connect(); tok.WaitTimeout(limit) && tok.Error() == nil {
		t.Error("connected without trusting the certificate")
		bad.Disconnect(0)
	}
}
