package wifi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Limits of the visitor count.
const (
	// MaxVisitors bounds the distinct visitors of one day (the contract's
	// bound of wifi.daily); beyond it the count stays at MaxVisitors.
	MaxVisitors = 100000
	// maxStateBytes bounds the state file read back at start.
	maxStateBytes = 8 << 20
	saltBytes     = 32
	keyBytes      = 16
)

// key is a truncated HMAC-SHA256 of a station address: enough to tell
// stations apart, useless without the salt.
type key [keyBytes]byte

func hashMAC(salt []byte, mac net.HardwareAddr) key {
	h := hmac.New(sha256.New, salt)
	h.Write(mac)
	var k key
	copy(k[:], h.Sum(nil))
	return k
}

func newSalt() []byte {
	s := make([]byte, saltBytes)
	rand.Read(s) // never fails on Linux (Go 1.24+ crashes rather than return short)
	return s
}

// report is a wifi.daily to record.
type report struct {
	Day      string `json:"day"`
	Visitors int    `json:"visitors"`
}

// stateFile is what the visitors file holds. The salt and the hashes are
// those of Day only; they are replaced, not kept, at rollover.
type stateFile struct {
	Version  int      `json:"version"`
	Day      string   `json:"day,omitempty"` // "" while the clock is unset
	Salt     []byte   `json:"salt"`
	Seen     []string `json:"seen"`               // hex keys of the day's stations
	Reported string   `json:"reported,omitempty"` // last day whose wifi.daily was recorded
	Pending  *report  `json:"pending,omitempty"`  // computed, not yet recorded
}

// visitors counts the distinct stations of one local day. It is used by
// one goroutine (Run's).
type visitors struct {
	path     string
	day      string
	salt     []byte
	seen     map[key]struct{}
	reported string
	pending  *report
	dirty    bool // seen has keys not yet saved
}

// loadVisitors reads the state file at path, or starts a new day if there
// is none. A damaged file is not fatal: the day starts afresh and the
// problem is returned beside a usable counter.
func loadVisitors(path, today string) (*visitors, error) {
	v := &visitors{path: path, day: validDay(today), salt: newSalt(), seen: map[key]struct{}{}}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return v, nil
	} else if err != nil {
		return v, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err != nil {
		return v, err
	}
	var st stateFile
	if len(b) > maxStateBytes {
		return v, fmt.Errorf("%s: larger than %d bytes, starting the day afresh", path, maxStateBytes)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return v, fmt.Errorf("%s: %v, starting the day afresh", path, err)
	}
	if st.Version != 1 || len(st.Salt) != saltBytes || (st.Day != "" && validDay(st.Day) == "") ||
		(st.Reported != "" && validDay(st.Reported) == "") || len(st.Seen) > MaxVisitors ||
		(st.Pending != nil && (validDay(st.Pending.Day) == "" || st.Pending.Visitors < 0 || st.Pending.Visitors > MaxVisitors)) {
		return v, fmt.Errorf("%s: invalid content, starting the day afresh", path)
	}
	seen := make(map[key]struct{}, len(st.Seen))
	for _, s := range st.Seen {
		var k key
		if hex.DecodedLen(len(s)) != keyBytes {
			return v, fmt.Errorf("%s: invalid hash, starting the day afresh", path)
		}
		if _, err := hex.Decode(k[:], []byte(s)); err != nil {
			return v, fmt.Errorf("%s: invalid hash, starting the day afresh", path)
		}
		seen[k] = struct{}{}
	}
	*v = visitors{path: path, day: st.Day, salt: st.Salt, seen: seen, reported: st.Reported, pending: st.Pending}
	return v, nil
}

// validDay returns d if it is a day from 2020 to 2099 (the contract's
// range; a Pi without a real-time clock reads 1970 before NTP), else "".
func validDay(d string) string {
	t, err := time.Parse(time.DateOnly, d)
	if err != nil || t.Year() < 2020 || t.Year() > 2099 {
		return ""
	}
	return d
}

// add counts a station; it reports whether it was new today.
func (v *visitors) add(mac net.HardwareAddr) bool {
	k := hashMAC(v.salt, mac)
	if _, ok := v.seen[k]; ok || len(v.seen) >= MaxVisitors {
		return false
	}
	v.seen[k] = struct{}{}
	v.dirty = true
	return true
}

func (v *visitors) count() int { return len(v.seen) }

// rollover moves to today if it is a later valid day: the finished day
// becomes pending (unless already reported), and a new salt replaces the
// old one with its hashes. A day still unknown (clock unset at start) is
// adopted without a report. An earlier or invalid today (clock stepped
// back, or unset) changes nothing. It reports whether the day changed; the
// state is saved before it returns.
func (v *visitors) rollover(today string) (bool, error) {
	today = validDay(today)
	switch {
	case today == "" || today == v.day || (v.day != "" && today < v.day):
		return false, nil
	case v.day == "":
		v.day = today
		return true, v.save()
	}
	if v.day > v.reported {
		// A pending report of an older day is replaced: it could not be
		// recorded (see markReported), and this day's is newer.
		v.pending = &report{Day: v.day, Visitors: v.count()}
	}
	v.day, v.salt, v.seen = today, newSalt(), map[key]struct{}{}
	return true, v.save()
}

// markReported notes that the pending report was recorded (or refused for
// good) and saves it.
func (v *visitors) markReported() error {
	if v.pending != nil && v.pending.Day > v.reported {
		v.reported = v.pending.Day
	}
	v.pending = nil
	return v.save()
}

// flush saves the state if new stations were counted since the last save.
func (v *visitors) flush() error {
	if !v.dirty {
		return nil
	}
	return v.save()
}

// save writes the state file atomically (temporary file, fsync, rename,
// fsync of the directory), readable by its owner only.
func (v *visitors) save() error {
	st := stateFile{Version: 1, Day: v.day, Salt: v.salt, Seen: make([]string, 0, len(v.seen)),
		Reported: v.reported, Pending: v.pending}
	for k := range v.seen {
		st.Seen = append(st.Seen, hex.EncodeToString(k[:]))
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	dir := filepath.Dir(v.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".visitors-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), v.path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	v.dirty = false
	return nil
}
