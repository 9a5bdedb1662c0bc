package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/broker"
	"github.com/relais-fr/relais/central/store"
	"github.com/relais-fr/relais/configs"
)

// agentPasswordFile is where the agent's [mqtt] password_file points by
// default (see configs/agent.example.toml).
const agentPasswordFile = "/etc/relais/mqtt-password"

// agentMessages are the texts of `relais-central agent`, in French (first)
// and English (second).
var agentMessages = map[string][2]string{
	"usage": {
		`usage :
  relais-central agent add --site SITE --agent AGENT [--broker mqtts://HÔTE:8883] [--reset]

Enregistre un agent (un Pi) auprès du broker de central, lui donne un mot de
passe neuf et affiche sa configuration [mqtt]. --reset donne un nouveau mot de
passe à un agent déjà enregistré (l'ancien cesse de fonctionner).
Accepte aussi --config FICHIER et --set section.clé=valeur.`,
		`usage:
  relais-central agent add --site SITE --agent AGENT [--broker mqtts://HOST:8883] [--reset]

Registers an agent (a Pi) with central's broker, gives it a new password and
prints its [mqtt] configuration. --reset gives a new password to an agent
registered already (the old one stops working).
Also takes --config FILE and --set section.key=value.`,
	},
	"unknown":    {"sous-commande inconnue %q", "unknown subcommand %q"},
	"no args":    {"arguments en trop : %s", "unexpected arguments: %s"},
	"site flag":  {"identifiant du site (a-z, 0-9 et -, 63 au plus)", "site id (a-z, 0-9 and -, at most 63)"},
	"agent flag": {"identifiant de l'agent dans le site", "agent id within the site"},
	"broker flag": {"adresse du broker pour l'agent (par défaut : ce serveur, d'après [broker])",
		"broker address for the agent (default: this server, from [broker])"},
	"reset flag": {"donner un nouveau mot de passe à un agent déjà enregistré", "give a new password to an agent registered already"},
	"bad id":     {"%s %q invalide : de 1 à 63 caractères parmi a-z, 0-9 et -", "invalid %s %q: 1 to 63 characters among a-z, 0-9 and -"},
	"bad broker": {"--broker %q invalide : voulu mqtt://HÔTE:1883 ou mqtts://HÔTE:8883", "invalid --broker %q: want mqtt://HOST:1883 or mqtts://HOST:8883"},
	"exists": {"l'agent %s est déjà enregistré ; pour lui donner un nouveau mot de passe : relais-central agent add --site %s --agent %s --reset",
		"agent %s is registered already; to give it a new password: relais-central agent add --site %s --agent %s --reset"},
	"storage": {"répertoire de stockage %s : %v", "storage directory %s: %v"},
	"added":   {"Agent %s enregistré.", "Agent %s registered."},
	"reset":   {"Nouveau mot de passe pour l'agent %s : l'ancien ne fonctionne plus.", "New password for agent %s: the old one no longer works."},
	"snippet": {"Configuration du Pi (section [mqtt] de /etc/relais/agent.toml) :", "The Pi's configuration ([mqtt] section of /etc/relais/agent.toml):"},
	"check broker": {"(vérifiez que le Pi joint central à cette adresse ; sinon relancez avec --broker)",
		"(check that the Pi reaches central at this address; if not, run again with --broker)"},
	"password": {"Mot de passe de l'agent, affiché cette fois seulement (central n'en garde qu'une empreinte) :",
		"The agent's password, shown this once only (central keeps only a hash of it):"},
	"install": {"Sur le Pi, écrivez-le dans %s, lisible par relais-agent seulement, puis redémarrez l'agent :",
		"On the Pi, write it to %s, readable by relais-agent only, then restart the agent:"},
	"external": {"Avec un broker externe (Mosquitto), ajoutez aussi l'agent à son fichier de mots de passe, avec ce mot de passe :",
		"With an external broker (Mosquitto), also add the agent to its password file, with this password:"},
}

// atr returns the message key of agentMessages in the user's language,
// formatted with args.
func atr(key string, args ...any) string { return translate(agentMessages, key, args...) }

// agentCommand is `relais-central agent add --site S --agent A`.
func agentCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, atr("usage"))
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	if args[0] != "add" {
		fmt.Fprintln(stderr, atr("unknown", args[0]))
		fmt.Fprintln(stderr, atr("usage"))
		return errUsage
	}
	fs := flag.NewFlagSet("relais-central agent add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	load := configFlags(fs)
	site := fs.String("site", "", atr("site flag"))
	agent := fs.String("agent", "", atr("agent flag"))
	brokerURL := fs.String("broker", "", atr("broker flag"))
	reset := fs.Bool("reset", false, atr("reset flag"))
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, atr("no args", strings.Join(fs.Args(), " ")))
		return errUsage
	}
	for _, id := range []struct{ name, v string }{{"site", *site}, {"agent", *agent}} {
		if !api.ValidID(id.v) {
			return errors.New(atr("bad id", id.name, id.v))
		}
	}
	if *brokerURL != "" {
		if u, err := url.Parse(*brokerURL); err != nil || u.Host == "" || u.User != nil ||
			u.Scheme != "mqtt" && u.Scheme != "mqtts" && u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "tls" {
			return errors.New(atr("bad broker", *brokerURL))
		}
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	derived := *brokerURL == ""
	if derived {
		*brokerURL = agentBroker(cfg)
	}

	// The password is made and hashed before the store is opened, so that
	// nothing is created for a command that fails.
	pw, err := broker.NewSecret()
	if err != nil {
		return err
	}
	hash, err := broker.HashSecret(pw)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(cfg.Storage.Dir, 0o700); err != nil {
		return errors.New(atr("storage", cfg.Storage.Dir, err))
	}
	st, err := store.Open(ctx, cfg.DB.URL, cfg.Storage.Dir)
	if err != nil {
		return err
	}
	defer st.Close()
	user := broker.Username(*site, *agent)
	err = st.AddAgent(ctx, store.Agent{Site: *site, Agent: *agent, SecretHash: hash, Created: time.Now().UTC()})
	switch {
	case errors.Is(err, store.ErrExists) && *reset:
		if err := st.SetAgentSecret(ctx, *site, *agent, hash); err != nil {
			return err
		}
		fmt.Fprintln(stdout, atr("reset", user))
	case errors.Is(err, store.ErrExists):
		return errors.New(atr("exists", user, *site, *agent))
	case err != nil:
		return err
	default:
		fmt.Fprintln(stdout, atr("added", user))
	}

	fmt.Fprintf(stdout, "\n%s\n\n[mqtt]\nbroker = %q\nusername = %q\npassword_file = %q\n",
		atr("snippet"), *brokerURL, user, agentPasswordFile)
	if derived {
		fmt.Fprintln(stdout, atr("check broker"))
	}
	fmt.Fprintf(stdout, "\n%s\n\n  %s\n\n%s\n\n", atr("password"), pw, atr("install", agentPasswordFile))
	fmt.Fprintf(stdout, "  printf '%%s\\n' '%s' | sudo install -m 0640 -o root -g relais-agent /dev/stdin %s\n", pw, agentPasswordFile)
	fmt.Fprintln(stdout, "  sudo systemctl restart relais-agent")
	if !cfg.Broker.Embedded {
		fmt.Fprintf(stdout, "\n%s\n\n  sudo mosquitto_passwd /etc/mosquitto/relais.passwd %s\n  sudo systemctl reload mosquitto\n", atr("external"), user)
	}
	return nil
}

// agentBroker returns the broker address an agent should use when
// --broker is not given: this machine's name with the embedded broker's
// TLS port when it has a certificate, else its plain port; or the
// external broker's URL, without credentials.
func agentBroker(cfg *configs.Central) string {
	b := cfg.Broker
	if !b.Embedded {
		if u, err := url.Parse(b.URL); err == nil {
			u.User = nil
			return u.String()
		}
		return b.URL
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	scheme, listen := "mqtt", b.Listen
	if b.CertFile != "" {
		scheme, listen = "mqtts", b.TLSListen
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" {
		port = "1883"
		if scheme == "mqtts" {
			port = "8883"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
