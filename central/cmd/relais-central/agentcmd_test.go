package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/relais-fr/relais/central/broker"
	"github.com/relais-fr/relais/central/store"
	"github.com/relais-fr/relais/configs"
)

// agentConfig writes a central configuration with its state in a new
// directory and returns its path and the directory.
func agentConfig(t *testing.T, extra string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "central.toml")
	body := "[storage]\ndir = \"" + filepath.Join(dir, "state") + "\"\n" + extra
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, filepath.Join(dir, "state")
}

var printedPassword = regexp.MustCompile(`printf '%s\\n' '([A-Za-z0-9_-]+)' \| sudo install`)

// runAgent runs relais-central agent ... and returns the exit status and
// outputs.
func runAgent(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(append([]string{"agent"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// agentHash returns the stored hash of an agent.
func agentHash(t *testing.T, dir, site, agent string) []byte {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:central.db", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := st.Agent(context.Background(), site, agent)
	if err != nil {
		t.Fatal(err)
	}
	return a.SecretHash
}

func TestAgentAdd(t *testing.T) {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES"} {
		t.Setenv(k, "")
	}
	t.Setenv("LANG", "fr_FR.UTF-8")
	cfg, dir := agentConfig(t, "")
	code, out, errs := runAgent(t, "add", "--config", cfg, "--site", "mairie-exemple", "--agent", "accueil", "--broker", "mqtts://central.example.org:8883")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	t.Log(out)
	if !strings.Contains(out, "Agent mairie-exemple/accueil enregistré.") || !strings.Contains(out, "affiché cette fois seulement") {
		t.Errorf("not the French text:\n%s", out)
	}
	// The snippet is the agent's [mqtt] section as it reads it.
	var agentCfg struct {
		MQTT configs.AgentMQTT `toml:"mqtt"`
	}
	snippet := out[strings.Index(out, "\n[mqtt]\n")+1:]
	snippet = snippet[:strings.Index(snippet, "\n\n")]
	md, err := toml.Decode(snippet, &agentCfg)
	if err != nil || len(md.Undecoded()) > 0 {
		t.Fatalf("snippet %q: %v, undecoded %v", snippet, err, md.Undecoded())
	}
	want := configs.AgentMQTT{Broker: "mqtts://central.example.org:8883", Username: "mairie-exemple/accueil", PasswordFile: "/etc/relais/mqtt-password"}
	if agentCfg.MQTT != want {
		t.Errorf("snippet gives %+v, want %+v", agentCfg.MQTT, want)
	}
	m := printedPassword.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no password in:\n%s", out)
	}
	pw := m[1]
	if !strings.Contains(out, "\n  "+pw+"\n") {
		t.Error("the password is not shown on its own line")
	}
	if err := broker.CheckSecret(agentHash(t, dir, "mairie-exemple", "accueil"), pw); err != nil {
		t.Errorf("the printed password does not match the stored hash: %v", err)
	}

	// Again: refused, unless --reset, which changes the password.
	code, _, errs = runAgent(t, "add", "--config", cfg, "--site", "mairie-exemple", "--agent", "accueil")
	if code != 1 || !strings.Contains(errs, "déjà enregistré") || !strings.Contains(errs, "--reset") {
		t.Errorf("an existing agent: exit %d, %q", code, errs)
	}
	t.Setenv("LANG", "en_GB.UTF-8")
	code, out, errs = runAgent(t, "add", "--config", cfg, "--site", "mairie-exemple", "--agent", "accueil", "--reset")
	if code != 0 || !strings.Contains(out, "New password for agent mairie-exemple/accueil") || !strings.Contains(out, "shown this once only") {
		t.Fatalf("--reset: exit %d, %s\n%s", code, errs, out)
	}
	// Without --broker, the address is this machine's embedded broker.
	host, _ := os.Hostname()
	if !strings.Contains(out, `broker = "mqtt://`+host+`:1883"`) || !strings.Contains(out, "run again with --broker") {
		t.Errorf("derived broker address:\n%s", out)
	}
	m = printedPassword.FindStringSubmatch(out)
	if m == nil || m[1] == pw {
		t.Fatalf("no new password in:\n%s", out)
	}
	h := agentHash(t, dir, "mairie-exemple", "accueil")
	if err := broker.CheckSecret(h, pw); !errors.Is(err, broker.ErrWrongSecret) {
		t.Errorf("the old password after --reset: %v", err)
	}
	if err := broker.CheckSecret(h, m[1]); err != nil {
		t.Errorf("the new password: %v", err)
	}
}

func TestAgentAddExternalBroker(t *testing.T) {
	t.Setenv("LC_ALL", "en_US.UTF-8")
	cfg, _ := agentConfig(t, "[broker]\nembedded = false\nurl = \"mqtts://central:secret@broker.example.org:8883\"\n")
	code, out, errs := runAgent(t, "add", "--config", cfg, "--site", "s", "--agent", "a")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, `broker = "mqtts://broker.example.org:8883"`) || strings.Contains(out, "secret") {
		t.Errorf("broker address from [broker] url, without its credentials:\n%s", out)
	}
	if !strings.Contains(out, "mosquitto_passwd /etc/mosquitto/relais.passwd s/a") {
		t.Errorf("no instruction for the external broker's password file:\n%s", out)
	}
}

func TestAgentUsage(t *testing.T) {
	t.Setenv("LC_ALL", "en_US.UTF-8")
	cfg, dir := agentConfig(t, "")
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "usage:"},
		{[]string{"remove"}, 2, `unknown subcommand "remove"`},
		{[]string{"add", "--config", cfg, "--site", "Mairie", "--agent", "a"}, 1, `invalid site "Mairie"`},
		{[]string{"add", "--config", cfg, "--site", "s"}, 1, `invalid agent ""`},
		{[]string{"add", "--config", cfg, "--site", "s", "--agent", "a", "extra"}, 2, "unexpected arguments: extra"},
		{[]string{"add", "--config", cfg, "--site", "s", "--agent", "a", "--broker", "http://x"}, 1, "invalid --broker"},
		{[]string{"add", "--config", cfg, "--site", "s", "--agent", "a", "--broker", "mqtt://u:p@x:1883"}, 1, "invalid --broker"},
		{[]string{"add", "--nope"}, 2, "flag provided but not defined"},
	}
	for _, c := range cases {
		code, _, errs := runAgent(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: exit %d, %q; want %d and %q", c.args, code, errs, c.code, c.msg)
		}
	}
	if code, _, _ := runAgent(t, "-h"); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "central.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused command created the database: %v", err)
	}
}
