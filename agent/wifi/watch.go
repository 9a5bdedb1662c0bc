// Package wifi is the agent's Wi-Fi watch. It follows the site's access
// point through hostapd's control socket (STATUS, STA-FIRST/STA-NEXT and
// ATTACH events, see package hostapd) or, when only an interface is
// configured, by polling nl80211; it keeps a snapshot for the metrics
// (up, SSID, channel, clients), raises the fault "wifi-ap-down" while the
// access point is gone or disabled and clears it on its return, and counts
// the day's distinct visitors. Station addresses never leave the Pi and are
// never stored: a visitor is the HMAC-SHA256 of its address under a random
// salt of the local day, kept with the day's hashes in a 0600 file under
// the storage directory (so that a restart does not count anyone twice) and
// replaced at midnight, when one wifi.daily event with the finished day's
// count is recorded; the last reported day is kept so that no day is
// reported twice.
package wifi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/relais-fr/relais/central/api"
)

// FaultAPDown is the fault code raised (device wifi, severity fault) while
// the access point is unreachable or disabled.
const FaultAPDown = "wifi-ap-down"

// Faults opens and closes faults; *outbox.Outbox implements it.
type Faults interface {
	Raise(device api.Device, code string, severity api.Severity) error
	Clear(device api.Device, code string) error
}

// Recorder records events durably; *outbox.Outbox implements it.
type Recorder interface {
	Record(api.Event) error
}

// Config configures a Watch. HostapdCtrl or Interface, StorageDir, Faults
// and Recorder are required; with HostapdCtrl, RuntimeDir too.
type Config struct {
	// HostapdCtrl is hostapd's control socket ([wifi] hostapd_ctrl). When
	// set, Interface is ignored.
	HostapdCtrl string
	// RuntimeDir is where the client sockets for hostapd are bound (the
	// unit's RuntimeDirectory: hostapd answers to the sender's path, and
	// /tmp is private to the unit).
	RuntimeDir string
	// Interface is the access point's wireless interface ([wifi]
	// interface), polled over nl80211 when HostapdCtrl is empty.
	Interface string
	// StorageDir is the agent's storage directory ([storage] dir); the
	// visitor state is kept in its wifi/ subdirectory.
	StorageDir string

	Faults   Faults
	Recorder Recorder

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Location makes local days; nil means time.Local. Pass the outbox's.
	Location *time.Location
	// Poll is how often the day is checked, hostapd's state resynchronised
	// (events come at once) or nl80211 polled; 0 means 30 s.
	Poll time.Duration
	// PingInterval and MaxBackoff tune the hostapd monitor (see
	// hostapd.Monitor); 0 means its defaults.
	PingInterval time.Duration
	MaxBackoff   time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// fault states as the watch last set them.
const (
	faultUnknown = iota // not set since start: the outbox may hold an old one
	faultRaised
	faultCleared
)

// Watch is the Wi-Fi watch. Snapshot, Visitors, Err and Changed are safe
// for concurrent use; Run runs once.
type Watch struct {
	cfg     Config
	log     *slog.Logger
	memSalt []byte // keys the current stations in memory; never persisted

	// Owned by Run's goroutine (and New before it).
	vis     *visitors
	current map[key]struct{}
	fault   int

	mu      sync.Mutex
	snap    api.WiFi
	day     string
	count   int
	err     error
	changed chan struct{}
	running bool
}

// New checks cfg and loads the day's visitor state. A damaged state file is
// logged and the day starts afresh.
func New(cfg Config) (*Watch, error) {
	switch {
	case cfg.HostapdCtrl == "" && cfg.Interface == "":
		return nil, errors.New("wifi: neither hostapd_ctrl nor interface is set")
	case cfg.HostapdCtrl != "" && cfg.RuntimeDir == "":
		return nil, errors.New("wifi: a runtime directory is needed for the hostapd client socket")
	case cfg.StorageDir == "":
		return nil, errors.New("wifi: no storage directory")
	case cfg.Faults == nil || cfg.Recorder == nil:
		return nil, errors.New("wifi: Faults and Recorder are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 30 * time.Second
	}
	w := &Watch{cfg: cfg, log: cfg.Logger, memSalt: newSalt(), current: map[key]struct{}{}, changed: make(chan struct{})}
	if w.log == nil {
		w.log = slog.Default()
	}
	vis, err := loadVisitors(StatePath(cfg.StorageDir), w.today())
	if err != nil {
		w.log.Warn("wifi: visitor state", "err", err)
	}
	w.vis = vis
	w.day, w.count = vis.day, vis.count()
	return w, nil
}

// StatePath is the file, under the storage directory, that holds the day's
// salt and visitor hashes (mode 0600, in a 0700 directory).
func StatePath(storageDir string) string {
	return filepath.Join(storageDir, "wifi", "visitors.json")
}

func (w *Watch) today() string { return w.cfg.Now().In(w.cfg.Location).Format(time.DateOnly) }

// Snapshot returns the access point's state for the metrics.
func (w *Watch) Snapshot() api.WiFi {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap
}

// Visitors returns the local day being counted and its distinct visitors
// so far. The day is "" while the clock is unset.
func (w *Watch) Visitors() (day string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.day, w.count
}

// Err says why the access point is not up (hostapd unreachable, nl80211
// unavailable, AP disabled), or is nil.
func (w *Watch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Changed returns a channel that is closed at the next change of the
// snapshot, the visitor count, the fault or Err.
func (w *Watch) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// notify wakes Changed's waiters; w.mu is held.
func (w *Watch) notify() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// Run watches the access point until ctx ends, then saves the visitor state
// and returns nil. At start, and at each event and poll, it checks the
// local day: a finished day is recorded as wifi.daily.
func (w *Watch) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return errors.New("wifi: Run called twice")
	}
	w.running = true
	w.mu.Unlock()
	defer func() {
		if err := w.vis.flush(); err != nil {
			w.log.Warn("wifi: cannot save the visitor state", "err", err)
		}
	}()
	w.checkDay()
	if w.cfg.HostapdCtrl != "" {
		return w.runHostapd(ctx)
	}
	return w.runNL80211(ctx)
}

// checkDay rolls the visitor count over to today if the day changed, and
// records any pending wifi.daily. It reports whether the day changed: the
// stations connected now are then counted again, for the new day, by the
// caller's resynchronisation.
func (w *Watch) checkDay() bool {
	old := w.vis.pending
	rolled, err := w.vis.rollover(w.today())
	if err != nil {
		w.log.Warn("wifi: cannot save the visitor state", "err", err)
	}
	if old != nil && w.vis.pending != old {
		w.log.Warn("wifi: wifi.daily never recorded, replaced by a newer day's", "day", old.Day, "visitors", old.Visitors)
	}
	if rolled {
		w.publish()
	}
	if p := w.vis.pending; p != nil {
		err := w.cfg.Recorder.Record(api.Event{Type: api.EventWiFiDaily, Day: p.Day, Visitors: new(p.Visitors)})
		switch {
		case err == nil:
			w.log.Info("wifi: daily visitors recorded", "day", p.Day, "visitors", p.Visitors)
		case errors.Is(err, api.ErrInvalid):
			w.log.Error("wifi: wifi.daily refused, dropped", "day", p.Day, "err", err)
		default:
			w.log.Warn("wifi: cannot record wifi.daily, will retry", "day", p.Day, "err", err)
			return rolled
		}
		if err := w.vis.markReported(); err != nil {
			w.log.Warn("wifi: cannot save the visitor state", "err", err)
		}
		w.mu.Lock()
		w.notify()
		w.mu.Unlock()
	}
	return rolled
}

// flush saves new visitors, at each poll.
func (w *Watch) flush() {
	if err := w.vis.flush(); err != nil {
		w.log.Warn("wifi: cannot save the visitor state", "err", err)
	}
}

// publish copies the visitor count and clients for the readers.
func (w *Watch) publish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.day, w.count = w.vis.day, w.vis.count()
	w.snap.Clients = len(w.current)
	w.notify()
}

func (w *Watch) memKey(mac net.HardwareAddr) key { return hashMAC(w.memSalt, mac) }

// setUp records that the access point is up, with its SSID, channel and
// the stations connected now (the complete list).
func (w *Watch) setUp(ssid string, channel int, stations []net.HardwareAddr) {
	w.current = make(map[key]struct{}, len(stations))
	for _, mac := range stations {
		w.current[w.memKey(mac)] = struct{}{}
		w.vis.add(mac)
	}
	w.setFault(false) // before the snapshot shows it: readers see both
	snap := api.WiFi{Up: true, SSID: cleanSSID(ssid), Channel: cleanChannel(channel), Clients: len(w.current)}
	w.mu.Lock()
	if snap != w.snap || w.err != nil || w.day != w.vis.day || w.count != w.vis.count() {
		w.snap, w.err = snap, nil
		w.day, w.count = w.vis.day, w.vis.count()
		w.notify()
	}
	w.mu.Unlock()
}

// setDown records that the access point is down, and why.
func (w *Watch) setDown(reason error) {
	w.setFault(true) // before the snapshot shows it: readers see both
	w.current = map[key]struct{}{}
	w.mu.Lock()
	wasUp := w.snap.Up || w.err == nil // up, or not known yet
	changed := w.snap != (api.WiFi{}) || fmt.Sprint(w.err) != fmt.Sprint(reason)
	w.snap = api.WiFi{}
	w.err = reason
	if changed {
		w.notify()
	}
	w.mu.Unlock()
	if wasUp {
		w.log.Warn("wifi: access point down", "err", reason)
	}
}

// joined counts a station that connected.
func (w *Watch) joined(mac net.HardwareAddr) {
	w.current[w.memKey(mac)] = struct{}{}
	w.vis.add(mac)
	w.publish()
}

// left forgets a station that disconnected.
func (w *Watch) left(mac net.HardwareAddr) {
	delete(w.current, w.memKey(mac))
	w.publish()
}

// setFault raises or clears FaultAPDown on a change (and at the first call,
// which settles a fault left open by a previous run). A failed call is
// retried at the next one.
func (w *Watch) setFault(down bool) {
	var err error
	switch {
	case down && w.fault != faultRaised:
		if err = w.cfg.Faults.Raise(api.DeviceWiFi, FaultAPDown, api.SeverityFault); err == nil {
			w.fault = faultRaised
		}
	case !down && w.fault != faultCleared:
		if err = w.cfg.Faults.Clear(api.DeviceWiFi, FaultAPDown); err == nil {
			w.fault = faultCleared
		}
	default:
		return
	}
	if err != nil {
		w.log.Warn("wifi: cannot update fault", "code", FaultAPDown, "down", down, "err", err)
		return
	}
	w.mu.Lock()
	w.notify()
	w.mu.Unlock()
}

// cleanSSID returns s if it fits the contract (printable UTF-8, at most 32
// bytes), else its longest printable prefix within 32 bytes.
func cleanSSID(s string) string {
	for i, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) || i+utf8.RuneLen(r) > 32 {
			return s[:i]
		}
	}
	return s
}

// cleanChannel returns ch if it is a channel the contract accepts, else 0
// (left out).
func cleanChannel(ch int) int {
	if ch < 1 || ch > 233 {
		return 0
	}
	return ch
}
