package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/relais-fr/relais/central/auth"
	"github.com/relais-fr/relais/central/store"
)

// userMessages are the texts of `relais-central user`, in French (first)
// and English (second).
var userMessages = map[string][2]string{
	"usage": {
		`usage :
  relais-central user add NOM --role admin|technician|manager
  relais-central user passwd NOM
  relais-central user list
  relais-central user token NOM --role admin|technician|manager

Le mot de passe est demandé sans écho sur un terminal, sinon lu sur l'entrée
standard (une ligne). Il compte au moins %d caractères.
Chaque commande accepte aussi --config FICHIER et --set section.clé=valeur.`,
		`usage:
  relais-central user add NAME --role admin|technician|manager
  relais-central user passwd NAME
  relais-central user list
  relais-central user token NAME --role admin|technician|manager

The password is prompted for without echo on a terminal, else read from
standard input (one line). It has at least %d characters.
Every command also takes --config FILE and --set section.key=value.`,
	},
	"unknown":     {"sous-commande inconnue %q", "unknown subcommand %q"},
	"one name":    {"indiquez un seul nom d'utilisateur", "give exactly one user name"},
	"no args":     {"cette commande ne prend pas d'argument", "this command takes no argument"},
	"bad name":    {"nom %q invalide : de 1 à %d caractères imprimables, sans espace", "invalid name %q: 1 to %d printable characters, no spaces"},
	"bad role":    {"rôle %q invalide : admin, technician ou manager", "invalid role %q: admin, technician or manager"},
	"role flag":   {"rôle : `admin`, technician (actions à distance) ou manager (usage, sans actions)", "role: `admin`, technician (remote actions) or manager (usage, no actions)"},
	"prompt":      {"Mot de passe de %s : ", "Password for %s: "},
	"confirm":     {"Confirmez le mot de passe : ", "Confirm the password: "},
	"mismatch":    {"les deux mots de passe diffèrent", "the two passwords differ"},
	"no password": {"aucun mot de passe sur l'entrée standard", "no password on standard input"},
	"too short":   {"mot de passe trop court : au moins %d caractères", "password too short: at least %d characters"},
	"too long":    {"mot de passe trop long : au plus %d octets", "password too long: at most %d bytes"},
	"invalid pw":  {"le mot de passe contient des caractères de contrôle ou n'est pas de l'UTF-8", "the password holds control characters or is not UTF-8"},
	"exists":      {"l'utilisateur %s existe déjà (changez son mot de passe avec : relais-central user passwd %s)", "user %s exists already (change their password with: relais-central user passwd %s)"},
	"not found":   {"pas d'utilisateur %s (créez-le avec : relais-central user add %s --role ROLE)", "no user %s (create them with: relais-central user add %s --role ROLE)"},
	"added":       {"Utilisateur %s créé avec le rôle %s.", "User %s created with role %s."},
	"changed":     {"Mot de passe de %s changé.", "Password of %s changed."},
	"no users":    {"Aucun utilisateur. Créez le premier administrateur avec : relais-central user add NOM --role admin", "No users. Create the first admin with: relais-central user add NAME --role admin"},
	"header":      {"NOM\tRÔLE\tCRÉÉ LE", "NAME\tROLE\tCREATED"},
	"token":       {"Jeton d'API %s (rôle %s) créé. Il ne sera plus affiché : conservez-le. Prometheus l'envoie avec authorization: {type: Bearer, credentials: JETON}.", "API token %s (role %s) created. It will not be shown again: keep it. Prometheus sends it with authorization: {type: Bearer, credentials: TOKEN}."},
	"storage":     {"répertoire de stockage %s : %v", "storage directory %s: %v"},
}

// english reports whether messages should be in English: the first of
// LC_ALL, LC_MESSAGES and LANG that is set starts with "en".
func english() bool {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := os.Getenv(k); v != "" {
			return strings.HasPrefix(v, "en")
		}
	}
	return false
}

// tr returns the message key of userMessages in the user's language,
// formatted with args.
func tr(key string, args ...any) string { return translate(userMessages, key, args...) }

// translate returns the message key of messages (French, English) in the
// user's language (see english), formatted with args.
func translate(messages map[string][2]string, key string, args ...any) string {
	m, ok := messages[key]
	if !ok {
		panic("relais-central: no message " + key)
	}
	s := m[0]
	if english() {
		s = m[1]
	}
	if len(args) == 0 {
		return s
	}
	return fmt.Sprintf(s, args...)
}

// userCommand is `relais-central user add|passwd|list|token`.
func userCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, tr("usage", auth.MinPasswordLength))
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("relais-central user "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	load := configFlags(fs)
	var role string
	switch sub {
	case "add", "token":
		fs.StringVar(&role, "role", "", tr("role flag"))
	case "passwd", "list":
	default:
		fmt.Fprintln(stderr, tr("unknown", sub))
		fmt.Fprintln(stderr, tr("usage", auth.MinPasswordLength))
		return errUsage
	}
	names, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	var name string
	if sub == "list" {
		if len(names) != 0 {
			fmt.Fprintln(stderr, tr("no args"))
			return errUsage
		}
	} else {
		if len(names) != 1 {
			fmt.Fprintln(stderr, tr("one name"))
			return errUsage
		}
		name = names[0]
		if !auth.ValidName(name) {
			return errors.New(tr("bad name", name, auth.MaxNameLength))
		}
	}
	if (sub == "add" || sub == "token") && !auth.ValidRole(store.Role(role)) {
		return errors.New(tr("bad role", role))
	}
	cfg, err := load()
	if err != nil {
		return err
	}

	// A password is read before the store is opened, so that nothing is
	// created for a command that fails on its input.
	var hash []byte
	if sub == "add" || sub == "passwd" {
		pw, err := readPassword(os.Stdin, stderr, name)
		if err != nil {
			return err
		}
		if hash, err = auth.HashPassword(pw); err != nil {
			return passwordError(err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(cfg.Storage.Dir, 0o700); err != nil {
		return errors.New(tr("storage", cfg.Storage.Dir, err))
	}
	st, err := store.Open(ctx, cfg.DB.URL, cfg.Storage.Dir)
	if err != nil {
		return err
	}
	defer st.Close()

	switch sub {
	case "add":
		err := st.AddUser(ctx, store.User{Name: name, Role: store.Role(role), PasswordHash: hash, Created: time.Now().UTC()})
		if errors.Is(err, store.ErrExists) {
			return errors.New(tr("exists", name, name))
		} else if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tr("added", name, role))
	case "passwd":
		err := st.SetPassword(ctx, name, hash)
		if errors.Is(err, store.ErrNotFound) {
			return errors.New(tr("not found", name, name))
		} else if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tr("changed", name))
	case "list":
		users, err := st.Users(ctx)
		if err != nil {
			return err
		}
		if len(users) == 0 {
			fmt.Fprintln(stderr, tr("no users"))
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, tr("header"))
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, u.Role, u.Created.Local().Format("2006-01-02 15:04"))
		}
		return tw.Flush()
	case "token":
		tok, err := auth.New(auth.Options{Store: st}).NewToken(ctx, name, store.Role(role))
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
		fmt.Fprintln(stderr, tr("token", name, role))
	}
	return nil
}

// parseInterleaved parses args into fs, allowing flags after the
// positional arguments (user add NAME --role admin), and returns the
// positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// readPassword prompts for a password twice without echo when in is a
// terminal, else reads one line from in (a trailing \n or \r\n is not part
// of it).
func readPassword(in *os.File, prompt io.Writer, name string) (string, error) {
	fd := int(in.Fd())
	if term.IsTerminal(fd) {
		fmt.Fprint(prompt, tr("prompt", name))
		pw, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		if err := auth.ValidatePassword(string(pw)); err != nil {
			return "", passwordError(err)
		}
		fmt.Fprint(prompt, tr("confirm"))
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		if string(again) != string(pw) {
			return "", errors.New(tr("mismatch"))
		}
		return string(pw), nil
	}
	// One line; at most MaxPasswordLength+2 bytes are read, so a huge
	// input is not read whole.
	r := bufio.NewReaderSize(io.LimitReader(in, auth.MaxPasswordLength+2), 64)
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if !strings.HasSuffix(line, "\n") && len(line) > auth.MaxPasswordLength {
		return "", passwordError(auth.ErrPasswordTooLong)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New(tr("no password"))
	}
	return line, nil
}

// passwordError translates the password errors of auth.
func passwordError(err error) error {
	switch {
	case errors.Is(err, auth.ErrPasswordTooShort):
		return errors.New(tr("too short", auth.MinPasswordLength))
	case errors.Is(err, auth.ErrPasswordTooLong):
		return errors.New(tr("too long", auth.MaxPasswordLength))
	case errors.Is(err, auth.ErrPasswordInvalid):
		return errors.New(tr("invalid pw"))
	}
	return err
}
