package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/store"
)

func TestNewRequiresItsParts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, o := range []Options{
		{Auth: e.auth, Commander: e.cmd},
		{Store: e.st, Commander: e.cmd},
		{Store: e.st, Auth: e.auth},
		{Store: e.st, Auth: e.auth, Commander: e.cmd, OfflineAfter: -time.Second},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.user("alice", store.Technician)
	c := e.client()

	// Every page needs a session: a browser goes to the login form.
	r := c.get("/usage?period=week")
	if r.code != http.StatusSeeOther || r.location != "/login?next="+url.QueryEscape("/usage?period=week") {
		t.Fatalf("GET /usage without a session: %d to %q", r.code, r.location)
	}
	r = c.get("/login?next=" + url.QueryEscape("/usage?period=week"))
	if r.code != http.StatusOK {
		t.Fatalf("GET /login: %d", r.code)
	}
	mustContain(t, "login page", r.body, "Connexion", "Nom d'utilisateur", "Mot de passe", "Se connecter")
	token := loginTokenRe.FindStringSubmatch(r.body)[1]

	// Login CSRF: without the form's token, or with a token of another
	// nonce cookie, the login is refused before the password is looked at.
	r = c.post("/login", url.Values{"name": {"alice"}, "password": {password}})
	if r.code != http.StatusForbidden || !strings.Contains(text(r.body), "Le formulaire a expiré") {
		t.Errorf("login without token: %d\n%s", r.code, text(r.body))
	}
	other := e.client()
	otherToken := loginTokenRe.FindStringSubmatch(other.get("/login").body)[1]
	r = c.post("/login", url.Values{"login_token": {otherToken}, "name": {"alice"}, "password": {password}})
	if r.code != http.StatusForbidden {
		t.Errorf("login with another browser's token: %d", r.code)
	}
	// A cross-site post is refused whatever it carries.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/login", strings.NewReader(url.Values{"login_token": {token}, "name": {"alice"}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r := c.do(req); r.code != http.StatusForbidden || !strings.Contains(text(r.body), "Cette demande vient d'un autre site") {
		t.Errorf("cross-site login: %d\n%s", r.code, text(r.body))
	}

	// Wrong password.
	r = c.post("/login", url.Values{"login_token": {token}, "name": {"alice"}, "password": {"wrong password!"}, "next": {"/usage?period=week"}})
	if r.code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", r.code)
	}
	mustContain(t, "wrong password", r.body, "Nom d'utilisateur ou mot de passe incorrect.")
	if !strings.Contains(r.body, `value="alice"`) || strings.Contains(r.body, "wrong password!") {
		t.Errorf("the form should keep the name and never echo the password")
	}

	// The right one goes on to next.
	r = c.post("/login", url.Values{"login_token": {token}, "name": {"alice"}, "password": {password}, "next": {"/usage?period=week"}})
	if r.code != http.StatusSeeOther || r.location != "/usage?period=week" {
		t.Fatalf("login: %d to %q\n%s", r.code, r.location, text(r.body))
	}
	r = c.get("/")
	if r.code != http.StatusOK {
		t.Fatalf("GET / after login: %d", r.code)
	}
	mustContain(t, "fleet", r.body, "État du parc", "Connecté : alice (technicien)")
	// Logged in, /login goes on.
	if r := c.get("/login?next=/faults"); r.code != http.StatusSeeOther || r.location != "/faults" {
		t.Errorf("GET /login when logged in: %d to %q", r.code, r.location)
	}

	// Logout needs the session's CSRF token.
	if r := c.post("/logout", url.Values{"csrf": {"forged"}}); r.code != http.StatusForbidden {
		t.Errorf("logout with a wrong CSRF token: %d", r.code)
	}
	r = c.post("/logout", nil)
	if r.code != http.StatusSeeOther || r.location != "/login?out=1" {
		t.Fatalf("logout: %d to %q", r.code, r.location)
	}
	mustContain(t, "after logout", c.get("/login?out=1").body, "Vous êtes déconnecté.")
	if r := c.get("/"); r.code != http.StatusSeeOther {
		t.Errorf("GET / after logout: %d", r.code)
	}
}

func TestLoginRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.user("bob", store.Manager)
	c := e.client()
	var r response
	for range 10 {
		token := loginTokenRe.FindStringSubmatch(c.get("/login").body)[1]
		r = c.post("/login", url.Values{"login_token": {token}, "name": {"bob"}, "password": {"not the password"}})
		if r.code == http.StatusTooManyRequests {
			break
		}
	}
	if r.code != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("after many failures: %d, Retry-After %q", r.code, r.header.Get("Retry-After"))
	}
	mustContain(t, "rate limited", r.body, "Trop d'essais. Réessayez dans")
}

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                      "/",
		"/":                     "/",
		"/faults?state=all":     "/faults?state=all",
		"//evil.example/":       "/",
		"/\\evil.example":       "/",
		"https://evil.example/": "/",
		"javascript:alert(1)":   "/",
		"/login?next=/":         "/",
		"/a\nb":                 "/",
		"faults":                "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
	e := newEnv(t, envOptions{})
	e.user("carol", store.Admin)
	c := e.client()
	token := loginTokenRe.FindStringSubmatch(c.get("/login").body)[1]
	r := c.post("/login", url.Values{"login_token": {token}, "name": {"carol"}, "password": {password}, "next": {"//evil.example/x"}})
	if r.code != http.StatusSeeOther || r.location != "/" {
		t.Errorf("login with an off-site next: %d to %q", r.code, r.location)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.loggedIn("dan", store.Admin)
	for _, p := range []string{"/", "/login", "/faults", "/usage", "/nowhere", "/static/style.css"} {
		r := c.get(p)
		h := r.header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows inline code: %q", p, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") == "" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", p, h)
		}
		if strings.Contains(r.body, "<script>") || strings.Contains(r.body, " style=") || strings.Contains(r.body, " onclick") {
			t.Errorf("%s: inline script or style in the page", p)
		}
	}
	if r := c.get("/nowhere"); r.code != http.StatusNotFound {
		t.Errorf("unknown page: %d", r.code)
	}
	if r := c.get("/?q=" + strings.Repeat("x", maxQueryBytes)); r.code != http.StatusRequestURITooLong {
		t.Errorf("long query: %d", r.code)
	}
	if r := c.get("/static/live.js"); r.code != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/javascript") {
		t.Errorf("live.js: %d %q", r.code, r.header.Get("Content-Type"))
	}
}

// fleetFixture makes one agent of each state, at t0.
func fleetFixture(e *env) {
	for _, sa := range [][2]string{{"mairie", "accueil"}, {"biblio", "rdc"}, {"cafe", "comptoir"}, {"gare", "hall"}, {"ecole", "cdi"}, {"poste", "guichet"}} {
		e.agent(sa[0], sa[1])
	}
	// ok
	e.status("mairie", "accueil", t0.Add(-time.Minute))
	// fault: out of paper for 2 h 10, and an unknown code.
	e.status("biblio", "rdc", t0.Add(-time.Minute),
		fault(api.DevicePrinter, "media-empty", api.SeverityFault, t0.Add(-130*time.Minute)),
		fault(api.DevicePrinter, "mystery-reason", api.SeverityWarn, t0.Add(-5*time.Minute)))
	// warn
	e.status("cafe", "comptoir", t0.Add(-2*time.Minute),
		fault(api.DevicePrinter, "toner-low", api.SeverityWarn, t0.Add(-3*24*time.Hour-4*time.Hour)))
	// silent for an hour, with a last known fault
	e.status("gare", "hall", t0.Add(-time.Hour),
		fault(api.DeviceWiFi, "wifi-ap-down", api.SeverityFault, t0.Add(-90*time.Minute)))
	// the will: disconnected 20 minutes ago
	e.status("ecole", "cdi", t0.Add(-40*time.Minute))
	e.offline("ecole", "cdi", t0.Add(-20*time.Minute))
	// poste/guichet: registered, never seen.
}

func TestFleet(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	fleetFixture(e)
	c := e.loggedIn("tech", store.Technician)
	r := c.get("/")
	if r.code != http.StatusOK {
		t.Fatalf("GET /: %d", r.code)
	}
	mustContain(t, "fleet", r.body,
		"1 en panne", "3 hors ligne", "1 à surveiller", "1 fonctionnent",
		"✖ En panne", "Imprimante : plus de papier (panne), depuis 2 h 10",
		"Imprimante : mystery-reason (alerte), depuis 5 min",
		"Imprimante : toner bientôt vide (alerte), depuis 3 j 4 h",
		"⊘ Hors ligne", "Hors ligne depuis 1 h", "Wi-Fi : le Wi-Fi public est coupé",
		"dernier état connu avant la coupure",
		"Déconnecté depuis 20 min",
		"Aucun message reçu depuis l'enregistrement.",
		"Tout fonctionne.", "il y a 1 min", "jamais",
		"Mis à jour à 14:00:00",
	)
	// Worst first: fault, then offline, then warn, then ok.
	body := text(r.body)
	before(t, body, "biblio", "ecole")
	before(t, body, "ecole", "gare")
	before(t, body, "gare", "poste")
	before(t, body, "poste", "cafe")
	before(t, body, "cafe", "mairie")
	if !strings.Contains(r.body, `<a href="/sites/biblio/rdc">rdc</a>`) {
		t.Error("no link to the site page")
	}
	// The live part alone.
	live := c.get("/fleet/live")
	if live.code != http.StatusOK || strings.Contains(live.body, "<html") || !strings.Contains(live.body, "plus de papier") {
		t.Errorf("GET /fleet/live: %d\n%s", live.code, live.body)
	}
	// Time passes: the silent agents stay offline longer, and an agent
	// that stops talking goes offline after OfflineAfter.
	e.clock.Advance(11 * time.Minute)
	mustContain(t, "fleet later", c.get("/").body, "0 fonctionnent", "6 hors ligne", "Hors ligne depuis 12 min")
	mustContain(t, "live part later", c.get("/fleet/live").body, "6 hors ligne")
	// A change shows at once in the live part, which is cached otherwise.
	e.status("mairie", "accueil", e.clock.Now(), fault(api.DevicePrinter, "door-open", api.SeverityFault, e.clock.Now()))
	e.d.Changed("mairie", "accueil")
	mustContain(t, "live part after a change", c.get("/fleet/live").body, "5 hors ligne", "une porte est ouverte")
}

func TestFleetEmpty(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.loggedIn("tech", store.Technician)
	mustContain(t, "empty fleet", c.get("/").body, "Aucun relais n'est encore enregistré")
}

func TestLanguage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	fleetFixture(e)
	c := e.loggedIn("tech", store.Technician)

	// French by default, and for a language the dashboard does not have.
	for _, al := range []string{"", "de-DE,de;q=0.9", "fr-CA"} {
		c.lang = al
		r := c.get("/")
		mustContain(t, "Accept-Language "+al, r.body, "État du parc", "plus de papier", "depuis 2 h 10")
		if !strings.Contains(r.body, `<html lang="fr">`) {
			t.Errorf("Accept-Language %q: not lang=fr", al)
		}
	}
	// English when the browser prefers it.
	c.lang = "en-GB,en;q=0.9,fr;q=0.5"
	r := c.get("/")
	mustContain(t, "English", r.body, "Fleet health", "Printer: out of paper (fault), for 2 h 10 min", "Offline for 1 h", "1 with a fault", "Français")
	if !strings.Contains(r.body, `<html lang="en">`) {
		t.Error("not lang=en")
	}
	// The switch keeps the choice in a cookie, whatever the browser says.
	c.lang = "en"
	r = c.get("/lang/fr?next=" + url.QueryEscape("/faults?state=all"))
	if r.code != http.StatusSeeOther || r.location != "/faults?state=all" {
		t.Fatalf("GET /lang/fr: %d to %q", r.code, r.location)
	}
	mustContain(t, "after switching to French", c.get("/faults?state=all").body, "Pannes", "Filtrer")
	c.get("/lang/en?next=/")
	c.lang = "fr"
	mustContain(t, "after switching to English", c.get("/").body, "Fleet health")
	// The switch link points to the other language and back here.
	if !strings.Contains(c.get("/usage").body, `href="/lang/fr?next=%2fusage"`) {
		t.Error("the language link does not lead back to the page")
	}
	if r := c.get("/lang/de?next=/"); r.code != http.StatusNotFound {
		t.Errorf("GET /lang/de: %d", r.code)
	}
}

// siteFixture makes biblio/rdc with metrics, a closed fault, an open one.
func siteFixture(e *env) {
	e.agent("biblio", "rdc")
	ctx := context.Background()
	e.status("biblio", "rdc", t0.Add(-3*time.Hour), fault(api.DeviceScanner, "scanner-jam", api.SeverityFault, t0.Add(-3*time.Hour)))
	e.status("biblio", "rdc", t0.Add(-2*time.Hour-15*time.Minute)) // cleared after 45 min
	e.status("biblio", "rdc", t0.Add(-time.Minute), fault(api.DevicePrinter, "media-empty", api.SeverityFault, t0.Add(-130*time.Minute)))
	temp := 61.5
	m := api.Metrics{
		Time: t0.Add(-time.Minute),
		Printer: &api.Printer{State: api.PrinterStopped, Reasons: []string{"media-empty"}, Markers: []api.Marker{
			{Name: "Black Toner", Kind: "toner-cartridge", Color: "#000000", Level: 40},
			{Name: "Drum", Kind: "opc", Level: api.MarkerLevelUnknown},
		}},
		Queue:   &api.Queue{Pending: 3, Held: 1, Processing: 0, CompletedToday: 27},
		Scanner: &api.Scanner{State: api.ScannerIdle, ADFLoaded: true},
		WiFi:    &api.WiFi{Up: true, SSID: "Bibliotheque-Public", Channel: 6, Clients: 4},
		Host: &api.Host{CPUTempC: &temp, Throttled: []string{"under-voltage-occurred"}, DiskFreeBytes: 12 << 30, DiskTotalBytes: 28 << 30,
			MemAvailableBytes: 600 << 20, MemTotalBytes: 1 << 30, UptimeS: 3*86400 + 5*3600, Load1: 0.42, ClockSynced: true},
	}
	if err := m.Validate(); err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.SetMetrics(ctx, "biblio", "rdc", m, t0.Add(-time.Minute)); err != nil {
		e.t.Fatal(err)
	}
}

func TestSite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	siteFixture(e)
	c := e.loggedIn("tech", store.Technician)
	r := c.get("/sites/biblio/rdc")
	if r.code != http.StatusOK {
		t.Fatalf("GET site: %d", r.code)
	}
	mustContain(t, "site", r.body,
		"Relais biblio / rdc", "En panne", "Imprimante : plus de papier (panne), depuis 2 h 10",
		"Version 0.9.1", "État arrêtée", "Signalements plus de papier",
		"Black Toner 40 % 40 %", "Drum niveau inconnu",
		"En attente de l'imprimante 3", "Retenues (à libérer) 1", "Terminées aujourd'hui 27",
		"État prêt", "Feuilles dans le chargeur oui",
		"allumé", "Bibliotheque-Public", "Canal 6", "Appareils connectés 4",
		"61.5 °C", "l'alimentation a été trop faible depuis le démarrage",
		"12.0 Go sur 28.0 Go (42 %)", "600 Mo sur 1.0 Go (58 %)", "Allumé depuis 3 j 5 h", "0.42",
		"Historique des pannes",
		"Scanner : bourrage dans le scanner", "45 min",
		"Imprimante : plus de papier", "en cours",
		"Actions à distance", "Faire clignoter le voyant", "Imprimer une page de test", "Annuler toutes les impressions",
		"Aucune commande envoyée.",
	)
	if !strings.Contains(r.body, `<meter id="marker-0" min="0" max="100" low="16" high="40" optimum="100" value="40">`) {
		t.Error("no meter for the toner")
	}
	if !strings.Contains(r.body, `data-live="/sites/biblio/rdc/live" data-key="biblio/rdc"`) {
		t.Error("the site page is not live")
	}
	for _, p := range []string{"/sites/nobody/here", "/sites/Bad_Id/x"} {
		if r := c.get(p); r.code != http.StatusNotFound {
			t.Errorf("GET %s: %d", p, r.code)
		}
	}
	mustContain(t, "unknown agent", c.get("/sites/nobody/here").body, "Ce relais est inconnu")
}

func TestActions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	siteFixture(e)
	c := e.loggedIn("tech", store.Technician)
	c.get("/sites/biblio/rdc")
	ctx := context.Background()

	r := c.post("/sites/biblio/rdc/commands", url.Values{"command": {"identify"}})
	if r.code != http.StatusSeeOther || r.location != "/sites/biblio/rdc?sent=identify" {
		t.Fatalf("identify: %d to %q\n%s", r.code, r.location, text(r.body))
	}
	sent := e.cmd.commands()
	if len(sent) != 1 || sent[0].Site != "biblio" || sent[0].Agent != "rdc" || sent[0].Cmd.Name != api.CommandIdentify || sent[0].Cmd.Req == "" {
		t.Fatalf("sent %+v", sent)
	}
	cmds, err := e.st.Commands(ctx, "biblio", "rdc", 10)
	if err != nil || len(cmds) != 1 || cmds[0].Req != sent[0].Cmd.Req || cmds[0].By != "tech" || cmds[0].Name != "identify" || !cmds[0].At.Equal(t0) {
		t.Fatalf("recorded %+v, %v", cmds, err)
	}
	r = c.get(r.location)
	mustContain(t, "after identify", r.body, "Commande « Faire clignoter le voyant » envoyée.", "en attente de réponse", "tech")

	// The agent answers.
	if err := e.st.CommandDone(ctx, "biblio", "rdc", api.CommandResult{Req: sent[0].Cmd.Req, OK: true}, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "after the answer", c.get("/sites/biblio/rdc/live").body, "réussie")

	// Commands that delete need the tick.
	r = c.post("/sites/biblio/rdc/commands", url.Values{"command": {"cancel-jobs"}})
	if r.code != http.StatusSeeOther || r.location != "/sites/biblio/rdc?confirm=cancel-jobs" || len(e.cmd.commands()) != 1 {
		t.Errorf("cancel-jobs without confirm: %d to %q, %d sent", r.code, r.location, len(e.cmd.commands()))
	}
	mustContain(t, "confirm needed", c.get(r.location).body, "Cochez « Je confirme » pour « Annuler toutes les impressions ».")
	r = c.post("/sites/biblio/rdc/commands", url.Values{"command": {"cancel-jobs"}, "confirm": {"yes"}})
	if r.code != http.StatusSeeOther || len(e.cmd.commands()) != 2 {
		t.Errorf("cancel-jobs confirmed: %d, %d sent", r.code, len(e.cmd.commands()))
	}

	// The broker is down: the command is recorded as not sent.
	e.cmd.mu.Lock()
	e.cmd.fail = errBrokerDown
	e.cmd.mu.Unlock()
	r = c.post("/sites/biblio/rdc/commands", url.Values{"command": {"refresh"}})
	if r.location != "/sites/biblio/rdc?notsent=refresh" {
		t.Errorf("refresh with the broker down: %d to %q", r.code, r.location)
	}
	mustContain(t, "not sent", c.get(r.location).body, "La commande « Actualiser l'état » n'a pas pu être envoyée",
		"non envoyée : le relais était injoignable")

	// Refused: an unknown command, an unknown agent, a missing CSRF token.
	if r := c.post("/sites/biblio/rdc/commands", url.Values{"command": {"reboot"}}); r.code != http.StatusBadRequest {
		t.Errorf("unknown command: %d", r.code)
	}
	if r := c.post("/sites/nobody/here/commands", url.Values{"command": {"identify"}}); r.code != http.StatusNotFound {
		t.Errorf("unknown agent: %d", r.code)
	}
	if r := c.post("/sites/biblio/rdc/commands", url.Values{"command": {"identify"}, "csrf": {""}}); r.code != http.StatusForbidden {
		t.Errorf("no CSRF token: %d", r.code)
	}
	if n := len(e.cmd.commands()); n != 2 {
		t.Errorf("%d commands reached the broker, want 2", n)
	}
}

func TestManagerCannotAct(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	siteFixture(e)
	m := e.loggedIn("manon", store.Manager)
	r := m.get("/sites/biblio/rdc")
	if r.code != http.StatusOK {
		t.Fatalf("manager GET site: %d", r.code)
	}
	if strings.Contains(r.body, "/commands") || strings.Contains(r.body, "Faire clignoter") {
		t.Error("a manager sees action buttons")
	}
	mustContain(t, "manager site", r.body, "Votre rôle permet de consulter, pas d'agir à distance.")
	if r := m.post("/sites/biblio/rdc/commands", url.Values{"command": {"identify"}}); r.code != http.StatusForbidden {
		t.Errorf("manager POST command: %d", r.code)
	}
	if len(e.cmd.commands()) != 0 {
		t.Error("a manager's command reached the broker")
	}
	r = m.get("/faults")
	if strings.Contains(r.body, "/ack") || strings.Contains(r.body, "Je m'en occupe") {
		t.Error("a manager sees the acknowledge button")
	}
	fs, _ := e.st.Faults(context.Background(), store.FaultQuery{})
	if r := m.post("/faults/"+strconv.FormatInt(fs[0].ID, 10)+"/ack", nil); r.code != http.StatusForbidden {
		t.Errorf("manager POST ack: %d", r.code)
	}
	// The manager still sees the fleet and usage.
	for _, p := range []string{"/", "/usage", "/faults"} {
		if r := m.get(p); r.code != http.StatusOK {
			t.Errorf("manager GET %s: %d", p, r.code)
		}
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	siteFixture(e)
	fleetFixture2(e)
	c := e.loggedIn("tech", store.Technician)

	r := c.get("/faults")
	if r.code != http.StatusOK {
		t.Fatalf("GET /faults: %d", r.code)
	}
	mustContain(t, "open faults", r.body, "biblio / rdc", "Imprimante : plus de papier", "✖ panne", "en cours", "2 h 10", "Je m'en occupe")
	mustNotContain(t, "open faults", r.body, "bourrage dans le scanner")
	mustContain(t, "closed faults", c.get("/faults?state=closed").body, "Scanner : bourrage dans le scanner", "45 min")
	mustNotContain(t, "closed faults", c.get("/faults?state=closed").body, "plus de papier")
	mustContain(t, "by site", c.get("/faults?state=all&site=cafe").body, "toner bientôt vide")
	mustNotContain(t, "by site", c.get("/faults?state=all&site=cafe").body, "biblio / rdc")
	// Since: what started since, and what is still open.
	r = c.get("/faults?state=all&since=2026-03-17")
	mustContain(t, "since", r.body, "toner bientôt vide", "plus de papier")
	mustNotContain(t, "since", r.body, "bourrage dans le scanner")
	for _, q := range []string{"state=maybe", "site=Bad!", "since=yesterday", "since=1999-01-01"} {
		if r := c.get("/faults?" + q); r.code != http.StatusBadRequest {
			t.Errorf("GET /faults?%s: %d", q, r.code)
		}
	}

	// Acknowledge the printer fault.
	open := true
	fs, err := e.st.Faults(context.Background(), store.FaultQuery{Site: "biblio", Open: &open})
	if err != nil || len(fs) != 1 {
		t.Fatalf("open faults of biblio: %v %v", fs, err)
	}
	c.get("/faults?site=biblio")
	r = c.post("/faults/"+strconv.FormatInt(fs[0].ID, 10)+"/ack", url.Values{"return": {"/faults?site=biblio"}})
	if r.code != http.StatusSeeOther || r.location != "/faults?acked=1&site=biblio" {
		t.Fatalf("ack: %d to %q\n%s", r.code, r.location, text(r.body))
	}
	fs, _ = e.st.Faults(context.Background(), store.FaultQuery{Site: "biblio", Open: &open})
	if fs[0].AckedBy != "tech" || !fs[0].AckedAt.Equal(t0) {
		t.Errorf("after ack: %+v", fs[0])
	}
	mustContain(t, "after ack", c.get(r.location).body, "Panne prise en charge.", "tech, 16/03/2026 14:00")
	mustContain(t, "fleet after ack", c.get("/").body, "pris en charge par tech")
	mustContain(t, "site after ack", c.get("/sites/biblio/rdc").body, "pris en charge par tech")
	if r := c.post("/faults/999999/ack", nil); r.code != http.StatusNotFound {
		t.Errorf("ack of an unknown fault: %d", r.code)
	}
	if r := c.post("/faults/abc/ack", nil); r.code != http.StatusNotFound {
		t.Errorf("ack of a bad id: %d", r.code)
	}
	// An off-site return goes home.
	r = c.post("/faults/"+strconv.FormatInt(fs[0].ID, 10)+"/ack", url.Values{"return": {"https://evil.example/"}})
	if r.location != "/" {
		t.Errorf("ack with an off-site return: to %q", r.location)
	}
}

// fleetFixture2 adds cafe/comptoir with a toner warning from days ago.
func fleetFixture2(e *env) {
	e.agent("cafe", "comptoir")
	e.status("cafe", "comptoir", t0.Add(-2*time.Minute),
		fault(api.DevicePrinter, "toner-low", api.SeverityWarn, t0.Add(-3*24*time.Hour-4*time.Hour)))
}
