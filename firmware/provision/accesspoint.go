package provision

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// AccessPoint is the [access_point] table of relais.toml: a Wi-Fi access point bridged with the
// wired network, so that visitors get their addresses from the site's router like the wired PCs.
// The agent watches it through hostapd's control socket /run/hostapd/INTERFACE, which its
// [wifi] hostapd_ctrl key names.
type AccessPoint struct {
	SSID       string // network name, 1 to 32 bytes
	Passphrase string // WPA2 passphrase, 8 to 63 printable ASCII characters; empty: an open network
	Country    string // ISO 3166-1 country code, for the regulatory domain
	Channel    int    // 2.4 GHz channel, 1 to 13
	Interface  string // wireless interface
	Bridge     string // wired interface bridged with the access point
}

var (
	countryCode = regexp.MustCompile(`^[A-Z]{2}$`)
	ifaceName   = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,15}$`)
)

// parseAccessPoint reads and checks the [access_point] table, with its defaults.
func parseAccessPoint(table map[string]any) (*AccessPoint, error) {
	ap := &AccessPoint{Country: "FR", Channel: 6, Interface: "wlan0", Bridge: "eth0"}
	known := []string{"ssid", "passphrase", "country", "channel", "interface", "bridge"}
	keys := make([]string, 0, len(table))
	for k := range table {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return nil, fmt.Errorf("%s: unknown key; known keys: %s", k, strings.Join(known, ", "))
		}
	}
	str := func(key string, dst *string) error {
		v, ok := table[key]
		if !ok {
			return nil
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want a string, got %T", key, v)
		}
		*dst = s
		return nil
	}
	for key, dst := range map[string]*string{"ssid": &ap.SSID, "passphrase": &ap.Passphrase,
		"country": &ap.Country, "interface": &ap.Interface, "bridge": &ap.Bridge} {
		if err := str(key, dst); err != nil {
			return nil, err
		}
	}
	if v, ok := table["channel"]; ok {
		n, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("channel: want a whole number from 1 to 13, got %T", v)
		}
		if n < 1 || n > 13 {
			return nil, fmt.Errorf("channel: %d, want 1 to 13", n)
		}
		ap.Channel = int(n)
	}
	switch {
	case ap.SSID == "" || len(ap.SSID) > 32:
		return nil, fmt.Errorf("ssid: %q, want 1 to 32 bytes", ap.SSID)
	case !utf8.ValidString(ap.SSID) || strings.ContainsFunc(ap.SSID, unicode.IsControl):
		return nil, fmt.Errorf("ssid: %q, want UTF-8 text without control characters", ap.SSID)
	case ap.Passphrase != "" && (len(ap.Passphrase) < 8 || len(ap.Passphrase) > 63):
		return nil, fmt.Errorf("passphrase: %d characters, want 8 to 63 (or none for an open network)", len(ap.Passphrase))
	case strings.ContainsFunc(ap.Passphrase, func(r rune) bool { return r < 0x20 || r > 0x7e }):
		return nil, fmt.Errorf("passphrase: want printable ASCII characters only")
	case !countryCode.MatchString(ap.Country):
		return nil, fmt.Errorf("country: %q, want a two-letter ISO 3166-1 code such as FR", ap.Country)
	case !ifaceName.MatchString(ap.Interface):
		return nil, fmt.Errorf("interface: %q, want a network interface name such as wlan0", ap.Interface)
	case !ifaceName.MatchString(ap.Bridge) || ap.Bridge == ap.Interface || ap.Bridge == bridgeName:
		return nil, fmt.Errorf("bridge: %q, want the wired interface, such as eth0", ap.Bridge)
	}
	return ap, nil
}

// bridgeName is the bridge joining the access point and the wired interface.
const bridgeName = "br0"

// hostapdConf is hostapd's configuration for the access point. Visitors are isolated from each
// other; the control socket is for the relais-agent group.
func (ap *AccessPoint) hostapdConf() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by relais-firstboot from relais.toml [%s]. Visitors are isolated\n", Section)
	b.WriteString("# from each other; relais-agent reads the control socket (group relais-agent).\n")
	fmt.Fprintf(&b, "interface=%s\nbridge=%s\ndriver=nl80211\n", ap.Interface, bridgeName)
	b.WriteString("ctrl_interface=/run/hostapd\nctrl_interface_group=relais-agent\n")
	fmt.Fprintf(&b, "ssid=%s\nutf8_ssid=1\n", ap.SSID)
	fmt.Fprintf(&b, "country_code=%s\nieee80211d=1\nhw_mode=g\nchannel=%d\nieee80211n=1\nwmm_enabled=1\n", ap.Country, ap.Channel)
	b.WriteString("auth_algs=1\nap_isolate=1\nignore_broadcast_ssid=0\n")
	if ap.Passphrase != "" {
		fmt.Fprintf(&b, "wpa=2\nwpa_key_mgmt=WPA-PSK\nrsn_pairwise=CCMP\nwpa_passphrase=%s\n", ap.Passphrase)
	}
	return b.String()
}

// networkdFiles are the systemd-networkd files of the bridge, by name: the wired interface joins
// br0, which takes its address by DHCP. They sort before the image's 50-relais-wired.network,
// which would otherwise give the wired interface its own address.
func (ap *AccessPoint) networkdFiles() map[string]string {
	head := "# Written by relais-firstboot from relais.toml [" + Section + "].\n"
	return map[string]string{
		"10-relais-br0.netdev":       head + "[NetDev]\nName=" + bridgeName + "\nKind=bridge\n",
		"20-relais-br0-port.network": head + "[Match]\nName=" + ap.Bridge + "\n\n[Network]\nBridge=" + bridgeName + "\n",
		"30-relais-br0.network":      head + "[Match]\nName=" + bridgeName + "\n\n[Network]\nDHCP=yes\nIPv6AcceptRA=yes\nMulticastDNS=no\n",
	}
}
