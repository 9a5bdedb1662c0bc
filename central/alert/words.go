package alert

import (
	"fmt"
	"time"

	"github.com/relais-fr/relais/central/api"
)

// Language is the language of the messages: French (the default) or
// English.
type Language string

// Languages.
const (
	French  Language = "fr"
	English Language = "en"
)

// words is what a fault is, in a few plain words of each language: a noun
// phrase that reads after "Site S, agent A:" and inside quotes.
type words struct{ fr, en string }

// faultWords names the faults that the agent raises, by device and code.
// Codes not here are shown as `problem "code" on the device`.
var faultWords = map[api.Device]map[string]words{
	api.DevicePrinter: {
		"printer-unreachable":      {"l'imprimante ne répond pas", "printer not answering"},
		"printer-stopped":          {"imprimante arrêtée", "printer stopped"},
		"media-empty":              {"plus de papier dans l'imprimante", "printer out of paper"},
		"media-needed":             {"plus de papier dans l'imprimante", "printer out of paper"},
		"media-low":                {"papier bientôt épuisé", "printer paper low"},
		"media-jam":                {"bourrage papier dans l'imprimante", "paper jam in the printer"},
		"door-open":                {"capot de l'imprimante ouvert", "printer door open"},
		"cover-open":               {"capot de l'imprimante ouvert", "printer door open"},
		"interlock-open":           {"capot de l'imprimante ouvert", "printer door open"},
		"toner-empty":              {"plus d'encre ou de toner", "printer out of ink or toner"},
		"marker-supply-empty":      {"plus d'encre ou de toner", "printer out of ink or toner"},
		"marker-ink-empty":         {"plus d'encre ou de toner", "printer out of ink or toner"},
		"developer-empty":          {"plus d'encre ou de toner", "printer out of ink or toner"},
		"toner-low":                {"encre ou toner bientôt épuisé", "ink or toner low"},
		"marker-supply-low":        {"encre ou toner bientôt épuisé", "ink or toner low"},
		"marker-ink-almost-empty":  {"encre ou toner bientôt épuisé", "ink or toner low"},
		"developer-low":            {"encre ou toner bientôt épuisé", "ink or toner low"},
		"input-tray-missing":       {"bac à papier de l'imprimante retiré", "printer paper tray missing"},
		"output-area-full":         {"bac de sortie de l'imprimante plein", "printer output tray full"},
		"output-tray-missing":      {"bac de sortie de l'imprimante retiré", "printer output tray missing"},
		"offline":                  {"imprimante hors ligne", "printer offline"},
		"shutdown":                 {"imprimante éteinte", "printer switched off"},
		"paused":                   {"imprimante en pause", "printer paused"},
		"marker-waste-full":        {"récupérateur d'encre plein", "printer waste container full"},
		"marker-waste-almost-full": {"récupérateur d'encre presque plein", "printer waste container almost full"},
		"fuser-over-temp":          {"imprimante en surchauffe", "printer overheating"},
		"opc-life-over":            {"pièce de l'imprimante à remplacer", "printer part to replace"},
	},
	api.DeviceScanner: {
		"scanner-unreachable": {"le scanner ne répond pas", "scanner not answering"},
		"scanner-jam":         {"bourrage papier dans le scanner", "paper jam in the scanner"},
		"media-jam":           {"bourrage papier dans le scanner", "paper jam in the scanner"},
		"adf-jam":             {"bourrage papier dans le scanner", "paper jam in the scanner"},
		"scanner-cover-open":  {"capot du scanner ouvert", "scanner lid open"},
		"cover-open":          {"capot du scanner ouvert", "scanner lid open"},
		"door-open":           {"capot du scanner ouvert", "scanner lid open"},
		"adf-cover-open":      {"chargeur du scanner ouvert", "scanner feeder open"},
	},
	api.DeviceWiFi: {
		"wifi-ap-down": {"Wi-Fi public coupé", "public Wi-Fi down"},
	},
	api.DeviceHost: {
		"disk-full":              {"disque du boîtier plein", "disk full"},
		"disk-low":               {"disque du boîtier presque plein", "disk almost full"},
		"under-voltage":          {"alimentation du boîtier trop faible", "power supply too weak"},
		"under-voltage-occurred": {"baisse de tension depuis le démarrage", "under-voltage since boot"},
		"cpu-hot":                {"processeur trop chaud", "CPU too hot"},
		"clock-unsynced":         {"horloge non synchronisée", "clock not synchronised"},
	},
	api.DeviceAgent: {
		"outbox-near-full": {"file d'envoi des événements presque pleine", "event outbox almost full"},
	},
}

// deviceWords names the devices.
var deviceWords = map[api.Device]words{
	api.DevicePrinter: {"imprimante", "printer"},
	api.DeviceScanner: {"scanner", "scanner"},
	api.DeviceWiFi:    {"Wi-Fi", "Wi-Fi"},
	api.DeviceHost:    {"boîtier", "host"},
	api.DeviceAgent:   {"agent", "agent"},
}

func (w words) in(l Language) string {
	if l == English {
		return w.en
	}
	return w.fr
}

// describeFault says what a fault is in plain words, and whether the code
// is one it knows (an unknown code is quoted in the words).
func describeFault(l Language, device api.Device, code string) (string, bool) {
	if w, ok := faultWords[device][code]; ok {
		return w.in(l), true
	}
	on, ok := onDevice[device]
	if !ok {
		on = words{"sur « " + string(device) + " »", "on \"" + string(device) + "\""}
	}
	if l == English {
		return fmt.Sprintf("problem %q %s", code, on.en), false
	}
	return fmt.Sprintf("problème « %s » %s", code, on.fr), false
}

// onDevice says where an unknown fault is.
var onDevice = map[api.Device]words{
	api.DevicePrinter: {"sur l'imprimante", "on the printer"},
	api.DeviceScanner: {"sur le scanner", "on the scanner"},
	api.DeviceWiFi:    {"sur le Wi-Fi", "on the Wi-Fi"},
	api.DeviceHost:    {"sur le boîtier", "on the host"},
	api.DeviceAgent:   {"sur l'agent", "on the agent"},
}

// deviceName names a device.
func deviceName(l Language, device api.Device) string {
	if w, ok := deviceWords[device]; ok {
		return w.in(l)
	}
	return string(device)
}

// severityName names a fault's severity.
func severityName(l Language, s api.Severity) string {
	switch s {
	case api.SeverityFault:
		return words{"panne", "fault"}.in(l)
	case api.SeverityWarn:
		return words{"avertissement", "warning"}.in(l)
	}
	return string(s)
}

// formatTime writes a time for people, to the minute, in loc.
func formatTime(l Language, t time.Time, loc *time.Location) string {
	t = t.In(loc)
	if l == English {
		return t.Format("2006-01-02 15:04 MST")
	}
	return t.Format("02/01/2006 à 15 h 04 MST")
}

// formatDuration writes a duration for people: "less than a minute",
// "35 min", "2 h 5 min", "3 d 4 h" (French: "3 j 4 h").
func formatDuration(l Language, d time.Duration) string {
	m := int64(d / time.Minute)
	switch {
	case m < 1:
		return words{"moins d'une minute", "less than a minute"}.in(l)
	case m < 60:
		return fmt.Sprintf("%d min", m)
	case m < 24*60:
		if m%60 == 0 {
			return fmt.Sprintf("%d h", m/60)
		}
		return fmt.Sprintf("%d h %d min", m/60, m%60)
	}
	day := words{"j", "d"}.in(l)
	h := m / 60
	if h%24 == 0 {
		return fmt.Sprintf("%d %s", h/24, day)
	}
	return fmt.Sprintf("%d %s %d h", h/24, day, h%24)
}
