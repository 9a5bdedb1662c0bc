package fleet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/relais-fr/relais/central/api"
)

// Bounds of a credentials file.
const (
	// MaxCredentialsBytes bounds a credentials file: 100,000 agents of long
	// ids and passwords fit.
	MaxCredentialsBytes = 32 << 20
	// MaxPasswordBytes bounds one password, as agent/uplink bounds a
	// password file.
	MaxPasswordBytes = 1 << 10
)

// AgentID names one agent: its site and its agent id within the site,
// both valid under api.ValidID.
type AgentID struct {
	Site, Agent string
}

// Username is the MQTT username of the agent, "{site}/{agent}", as
// `relais-central agent add` prints it for the agent's [mqtt] username.
func (id AgentID) Username() string { return id.Site + "/" + id.Agent }

func (id AgentID) String() string { return id.Site + "/" + id.Agent }

// Credentials holds the MQTT password of each agent.
type Credentials map[AgentID]string

// ReadCredentials reads a credentials file: one agent per line, "site agent
// password" separated by spaces or tabs, as relais-central's `agent add`
// creates them. Blank lines and lines starting with # are ignored. Ids must
// be valid (api.ValidID), passwords printable ASCII without spaces, and an
// agent may appear once.
func ReadCredentials(r io.Reader) (Credentials, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxCredentialsBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxCredentialsBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxCredentialsBytes)
	}
	creds := Credentials{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 4*MaxPasswordBytes)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: %d fields; want \"site agent password\"", n, len(f))
		}
		id := AgentID{f[0], f[1]}
		if !api.ValidID(id.Site) || !api.ValidID(id.Agent) {
			return nil, fmt.Errorf("line %d: site and agent must match [a-z0-9-]{1,63}", n)
		}
		if err := checkPassword(f[2]); err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		if _, dup := creds[id]; dup {
			return nil, fmt.Errorf("line %d: %s listed twice", n, id)
		}
		creds[id] = f[2]
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("a line is longer than %d bytes", 4*MaxPasswordBytes)
		}
		return nil, err
	}
	if len(creds) == 0 {
		return nil, errors.New("no credentials in it")
	}
	return creds, nil
}

// LoadCredentials reads the credentials file at path; see ReadCredentials.
func LoadCredentials(path string) (Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	creds, err := ReadCredentials(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return creds, nil
}

func checkPassword(p string) error {
	if len(p) > MaxPasswordBytes {
		return fmt.Errorf("password longer than %d bytes", MaxPasswordBytes)
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] > '~' {
			return errors.New("password must be printable ASCII without spaces")
		}
	}
	return nil
}
