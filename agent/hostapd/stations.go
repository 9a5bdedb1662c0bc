package hostapd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
)

// MaxStations bounds the stations one Stations call returns; an access
// point of a public digital-access point serves a few dozen at most.
const MaxStations = 2048

// ErrTooManyStations is returned by Stations when hostapd lists more than
// MaxStations stations (or loops).
var ErrTooManyStations = fmt.Errorf("hostapd: more than %d stations", MaxStations)

// Station is one station that hostapd knows, as STA-FIRST/STA-NEXT list it.
type Station struct {
	Addr  net.HardwareAddr // 6 bytes, never shown outside the Pi
	Flags string           // such as "[AUTH][ASSOC][AUTHORIZED]"
}

// Authorized reports whether the station may pass traffic: associated and,
// with WPA, through the 4-way handshake. hostapd sends AP-STA-CONNECTED at
// that moment, so this is what counts as a connected client.
func (s Station) Authorized() bool { return strings.Contains(s.Flags, "[AUTHORIZED]") }

// Stations lists the stations of the access point with STA-FIRST and
// STA-NEXT. If a station leaves during the walk (STA-NEXT then fails) the
// walk starts again, at most three times.
func (c *Conn) Stations(ctx context.Context) ([]Station, error) {
	var err error
	for range 3 {
		var stas []Station
		stas, err = c.walkStations(ctx)
		if !errors.Is(err, errWalkBroken) {
			return stas, err
		}
	}
	return nil, fmt.Errorf("hostapd: station list keeps changing: %w", err)
}

var errWalkBroken = errors.New("station left during STA-NEXT walk")

func (c *Conn) walkStations(ctx context.Context) ([]Station, error) {
	reply, err := c.Request(ctx, "STA-FIRST")
	if err != nil {
		return nil, err
	}
	var stas []Station
	seen := map[string]bool{}
	for {
		st, ok, err := ParseStation(reply)
		if err != nil || !ok {
			return stas, err
		}
		if seen[string(st.Addr)] || len(stas) == MaxStations {
			return stas, ErrTooManyStations
		}
		seen[string(st.Addr)] = true
		stas = append(stas, st)
		reply, err = c.Request(ctx, "STA-NEXT "+st.Addr.String())
		var unknown *unknownError
		switch {
		case err == nil:
		case ctx.Err() == nil && isRefusal(err):
			return nil, errWalkBroken
		case errors.As(err, &unknown):
			// Not the error itself: it quotes the command, with an address.
			return nil, errors.New("hostapd does not know STA-NEXT")
		default:
			return nil, err
		}
	}
}

// isRefusal reports whether err is hostapd's FAIL reply (and not a socket
// error).
func isRefusal(err error) bool {
	var r *refusedError
	return errors.As(err, &r)
}

// ParseStation parses a STA-FIRST/STA-NEXT reply: the station's address on
// the first line, then key=value lines. An empty reply (no more stations)
// gives ok false and no error; a reply whose first line is not a 6-byte
// MAC address is an error.
func ParseStation(reply string) (st Station, ok bool, err error) {
	if strings.TrimSpace(reply) == "" {
		return Station{}, false, nil
	}
	first, rest, _ := strings.Cut(reply, "\n")
	mac, err := parseMAC(strings.TrimSpace(first))
	if err != nil {
		// The line is not quoted: it may hold an address, kept out of logs.
		return Station{}, false, fmt.Errorf("hostapd: station reply does not start with an address (first line of %d bytes)", len(first))
	}
	kv := ParseKV(rest)
	flags := kv["flags"]
	if len(flags) > 256 {
		flags = flags[:256]
	}
	return Station{Addr: mac, Flags: flags}, true, nil
}

// parseMAC accepts only a 6-byte address written xx:xx:xx:xx:xx:xx, the
// form hostapd uses.
func parseMAC(s string) (net.HardwareAddr, error) {
	if len(s) != 17 {
		return nil, errors.New("not a MAC address")
	}
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, errors.New("not a MAC address")
	}
	return mac, nil
}
