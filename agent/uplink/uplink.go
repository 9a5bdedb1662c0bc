// Package uplink connects the agent to relais-central's MQTT broker: it
// builds the paho client options from the [mqtt] configuration (broker
// address, credentials read from a file, TLS with the site's CA) so that
// every part of the agent connects the same way.
package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/relais-fr/relais/configs"
)

// MaxPasswordFileBytes bounds the password file.
const MaxPasswordFileBytes = 4 << 10

// Options returns paho options for the configured broker with the given
// client id. The caller adds will, handlers and reconnect policy.
func Options(cfg configs.AgentMQTT, clientID string) (*mqtt.ClientOptions, error) {
	if cfg.Broker == "" {
		return nil, errors.New("no broker configured ([mqtt] broker)")
	}
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(clientID).
		SetCleanSession(true).
		SetConnectTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second)
	if cfg.Username != "" {
		opts.SetUsername(cfg.Username)
	}
	if cfg.PasswordFile != "" {
		pw, err := ReadPassword(cfg.PasswordFile)
		if err != nil {
			return nil, err
		}
		opts.SetPassword(pw)
	}
	if isTLS(cfg.Broker) {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, err
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s: no PEM certificate", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		opts.SetTLSConfig(tc)
	}
	return opts, nil
}

// ReadPassword reads a password file, without its trailing newline.
func ReadPassword(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Size() > MaxPasswordFileBytes {
		return "", fmt.Errorf("%s: larger than %d bytes; is it a password file?", path, MaxPasswordFileBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func isTLS(broker string) bool {
	for _, p := range []string{"mqtts://", "ssl://", "tls://"} {
		if strings.HasPrefix(broker, p) {
			return true
		}
	}
	return false
}
