package locale

// french translates the agent's English texts. Keys are the exact format
// strings used in the code.
var french = map[string]string{
	// relais-agent check
	"Configuration %s":       "Configuration %s",
	"site %s, agent %s (%s)": "site %s, agent %s (%s)",
	"Devices":                "Appareils",
	"OK":                     "OK",
	"FAIL":                   "ÉCHEC",
	"SKIP":                   "—",
	"not configured":         "non configuré",
	"%d problem(s) found.":   "%d problème(s) trouvé(s).",
	"Everything answers.":    "Tout répond.",
	"printer":                "imprimante",
	"scanner":                "scanner",
	"broker":                 "serveur central",
	"wifi":                   "wifi",
	"panel":                  "bouton et voyant",
	"storage":                "stockage",
	"simulated (no GPIO)":    "simulés (sans GPIO)",
	"pins %s":                "broches %s",
	"no GPIO chip found (%v); set [panel] simulate = true to run without a button": "aucune puce GPIO trouvée (%v) ; mettez [panel] simulate = true pour fonctionner sans bouton",
	"pin %s (%s) does not exist on this board":                                     "la broche %s (%s) n'existe pas sur cette carte",
	"writable, %s free of %s":                                                      "accessible en écriture, %s libres sur %s",
	"connected as %s":                                                              "connecté en tant que %s",
	"access point %s, channel %s, %s client(s)":                                    "point d'accès %s, canal %s, %s client(s)",
	"interface %s is %s":                                                           "l'interface %s est %s",
	// relais-agent ctl status
	"relais-agent %s, up %s": "relais-agent %s, démarré depuis %s",
	"storage in %s":          "stockage dans %s",
	"services: %s":           "services : %s",
	"none yet":               "aucun pour l'instant",
	"this command is not available in this version of relais-agent": "cette commande n'existe pas dans cette version de relais-agent",
}
