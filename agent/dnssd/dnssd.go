// Package dnssd advertises the agent's IPP Everywhere print queue on the
// local network with multicast DNS service discovery (RFC 6762, RFC 6763),
// so that public PCs and phones find it with no setup: the service
// _ipp._tcp with the subtypes _print and _universal, and the TXT keys that
// IPP Everywhere (PWG 5100.14 §4.2) and AirPrint clients read, txtvers
// first. [TXT] builds that record from a [Service] the caller fills in;
// [Advertise] announces it until its context ends, answers queries,
// announces again when the host's addresses change, and says goodbye when
// it stops. Whether to advertise at all (the dnssd setting) is the
// caller's decision.
package dnssd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/libp2p/zeroconf/v2"
	"github.com/miekg/dns"
)

// Library choice. Each candidate advertised the same service in a network
// namespace while python3-zeroconf 0.47 (Debian bookworm) browsed from
// another: _ipp._tcp and both subtypes, browsing only once the initial
// announcements were over (a browser already listening takes the subtype
// PTRs from the announcements and hides a responder that cannot answer
// for them), resolving the instance from an empty cache, and watching for
// the goodbye.
//
//   - github.com/libp2p/zeroconf/v2 v2.2.0 (chosen): keeps the TXT order,
//     puts the subtype PTRs in its announcements and goodbyes, answers
//     _ipp._tcp queries and says goodbye. But it never answers a subtype
//     query (it looks for "_print._sub._ipp._tcp.local._sub._ipp._tcp.local."),
//     so a client that comes after the announcements does not find the
//     queue under _print or _universal; it compares question names, as
//     miekg/dns unpacks them (escaped), with the instance name as given, so
//     an SRV or TXT query for a name with a space or a non-ASCII byte goes
//     unanswered; it answers no A/AAAA query for its host name; it does not
//     probe for a unique name (RFC 6762 §8–9); and it reads the addresses
//     once, at registration. From its code: its sockets, bound to
//     0.0.0.0:5353, also see the queries of interfaces outside the chosen
//     ones where another program has joined the mDNS group, and it answers
//     them there.
//   - github.com/grandcat/zeroconf v1.0.0 and its 2023 master: libp2p's
//     code base, with the same subtype bug (v1.0.0 has no subtypes).
//   - github.com/brutella/dnssd v1.2.14: the most complete responder
//     (probing, renaming on conflict, per-interface addresses, link
//     watching, goodbyes), but it takes the TXT record as a map and sorts
//     its keys, so txtvers came last, and it has no subtypes; neither can be
//     changed from outside.
//   - github.com/hashicorp/mdns v1.0.7: answers queries only, never
//     announces nor says goodbye (the instance was never removed), has no
//     subtypes, and its default host name lacks ".local".
//   - github.com/pion/mdns/v2 v2.2.2: answers PTR and SRV queries, but not
//     TXT ones from an empty cache, does not announce, says no goodbye and
//     has no subtypes.
//
// So this package runs libp2p/zeroconf, registered with RegisterProxy so
// that it announces the addresses of the chosen interfaces under a host name
// of our choosing (given the domain "local", not "local.", with which it
// writes the SRV target as "host.local.local."), with the instance name
// written the way miekg/dns prints received names, which makes its instance
// queries match. It registers again when the addresses change. And a small
// responder (responder.go), also on miekg/dns, answers the subtype PTR
// queries and the host's A/AAAA queries, and probes for the instance name
// before each registration (RFC 6762 §8.1, without the tie-break for
// simultaneous probes), taking "Name (2)", "Name (3)"… when it is taken
// (§9). libp2p's Lookup cannot stand in for the probe: it reports an
// instance only with its address, which python-zeroconf does not send with
// SRV and TXT answers, and it drops whole the responses in which miekg/dns
// finds a malformed record, such as python-zeroconf's NSEC records.

// ResourcePath is the IPP resource of the queue, the TXT key rp.
const ResourcePath = "ipp/print"

// serviceType is the DNS-SD service type; subtypes are the subtypes it is
// registered under.
const serviceType = "_ipp._tcp"

var subtypes = []string{"_print", "_universal"}

// TTL is the time to live, in seconds, of every record advertised: the
// RFC 6762 §10 value for records about a host, used for all of them so that
// a Pi that loses power drops out of clients' lists within minutes.
const TTL = 120

// maxLabel is the longest DNS label, and so the longest instance name, in
// bytes (RFC 6763 §4.1.1); maxTXTString is the longest string of a TXT
// record (RFC 6763 §6.1).
const (
	maxLabel     = 63
	maxTXTString = 255
)

// Service describes the advertised queue. The caller fills it in from the
// configuration and the upstream printer's attributes.
type Service struct {
	// Name is the instance name people see, such as "Relais – Mairie
	// d'Exemple": UTF-8, cut to 63 bytes on a character boundary.
	Name string
	// Port is the IPP port.
	Port int
	// MakeModel is the TXT key ty, the printer's make and model.
	MakeModel string
	// Location is the TXT key note, where the printer is.
	Location string
	// AdminURL is the TXT key adminurl, the agent's local page.
	AdminURL string
	// Formats are the document formats offered, in order of preference
	// (TXT key pdl), such as application/pdf, image/pwg-raster, image/urf
	// and image/jpeg.
	Formats []string
	// UUID is the printer-uuid, with or without "urn:uuid:".
	UUID string
	// Color and Duplex are the TXT keys Color and Duplex.
	Color, Duplex bool
	// URF is urf-supported as a comma list, such as "W8,SRGB24,CP1,RS300";
	// it is sent (TXT key URF) only when Formats offers image/urf, and it is
	// then required.
	URF string
	// Product is the TXT key product, with or without its parentheses.
	Product string
	// PrinterType is the CUPS printer-type bit field (TXT key
	// printer-type); zero means black and white, plus colour and duplex
	// when offered.
	PrinterType uint32
}

// CUPS printer-type bits (cups_ptype_t).
const (
	printerBW     = 0x0004
	printerColor  = 0x0008
	printerDuplex = 0x0010
)

// Validate reports what makes s unfit to advertise.
func (s Service) Validate() error {
	var errs []error
	if instanceName(s.Name, 1) == "" {
		errs = append(errs, errors.New("dnssd: no instance name"))
	}
	if s.Port <= 0 || s.Port > 65535 {
		errs = append(errs, fmt.Errorf("dnssd: port %d out of range", s.Port))
	}
	if uuidValue(s.UUID) == "" {
		errs = append(errs, errors.New("dnssd: no printer UUID"))
	}
	if len(formats(s.Formats)) == 0 {
		errs = append(errs, errors.New("dnssd: no document format"))
	}
	if s.offersURF() && strings.TrimSpace(s.URF) == "" {
		errs = append(errs, errors.New("dnssd: image/urf offered without URF capabilities"))
	}
	return errors.Join(errs...)
}

func (s Service) offersURF() bool {
	return slices.ContainsFunc(formats(s.Formats), func(f string) bool { return strings.EqualFold(f, "image/urf") })
}

// TXT returns the TXT record of s, one key=value string per entry, in the
// order clients expect: txtvers, qtotal, rp, ty, note, adminurl, pdl, UUID,
// Color, Duplex, URF, kind, priority, product, printer-state, printer-type.
// Keys whose value is unknown (ty, note, adminurl, UUID, URF, product) are
// left out. Each string is at most 255 bytes: a longer value is cut on a
// character boundary, and pdl drops the formats that do not fit. There is
// no TLS key: the queue is ipp, not ipps.
func TXT(s Service) []string {
	var txt []string
	add := func(key, value string) {
		txt = append(txt, fit(key, value))
	}
	addKnown := func(key, value string) {
		if value = strings.TrimSpace(value); value != "" {
			add(key, value)
		}
	}
	add("txtvers", "1")
	add("qtotal", "1")
	add("rp", ResourcePath)
	addKnown("ty", s.MakeModel)
	addKnown("note", s.Location)
	addKnown("adminurl", s.AdminURL)
	txt = append(txt, fitList("pdl", formats(s.Formats)))
	addKnown("UUID", uuidValue(s.UUID))
	add("Color", flag(s.Color))
	add("Duplex", flag(s.Duplex))
	if s.offersURF() {
		addKnown("URF", s.URF)
	}
	add("kind", "document")
	add("priority", "0")
	if p := strings.TrimSpace(s.Product); p != "" {
		if !strings.HasPrefix(p, "(") || !strings.HasSuffix(p, ")") {
			p = "(" + p + ")"
		}
		add("product", p)
	}
	add("printer-state", "3") // idle
	pt := s.PrinterType
	if pt == 0 {
		pt = printerBW
		if s.Color {
			pt |= printerColor
		}
		if s.Duplex {
			pt |= printerDuplex
		}
	}
	add("printer-type", fmt.Sprintf("0x%X", pt))
	return txt
}

// wireTXT returns txt as miekg/dns packs it unchanged: with its
// backslashes, the one character it treats as an escape, doubled.
func wireTXT(txt []string) []string {
	out := make([]string, len(txt))
	for i, s := range txt {
		out[i] = strings.ReplaceAll(s, `\`, `\\`)
	}
	return out
}

func flag(b bool) string {
	if b {
		return "T"
	}
	return "F"
}

// formats returns the non-empty formats, trimmed.
func formats(in []string) []string {
	var out []string
	for _, f := range in {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// uuidValue returns the UUID without its urn:uuid: prefix.
func uuidValue(u string) string {
	u = strings.TrimSpace(u)
	if len(u) >= 9 && strings.EqualFold(u[:9], "urn:uuid:") {
		u = u[9:]
	}
	return u
}

// fit returns key=value, the value cut on a character boundary so that the
// whole is at most maxTXTString bytes.
func fit(key, value string) string {
	return key + "=" + cut(value, maxTXTString-len(key)-1)
}

// fitList returns key=a,b,c with as many of the items, in order, as fit in
// maxTXTString bytes; an item that does not fit is left out whole.
func fitList(key string, items []string) string {
	var kept []string
	n := len(key) + 1
	for _, it := range items {
		sep := 0
		if len(kept) > 0 {
			sep = 1
		}
		if n+sep+len(it) > maxTXTString {
			continue
		}
		kept = append(kept, it)
		n += sep + len(it)
	}
	return key + "=" + strings.Join(kept, ",")
}

// cut returns s cut to at most n bytes on a character boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// instanceName returns name fit for an instance label: invalid UTF-8 and
// control characters removed, spaces and dots trimmed at both ends, and cut
// to 63 bytes on a character boundary. For n ≥ 2 it ends with " (n)", the
// name cut shorter to make room, as RFC 6762 §9 suggests for a name that is
// already taken.
func instanceName(name string, n int) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return -1
		}
		return r
	}, strings.ToValidUTF8(name, ""))
	name = strings.Trim(name, " .")
	suffix := ""
	if n >= 2 {
		suffix = fmt.Sprintf(" (%d)", n)
	}
	name = strings.TrimRight(cut(name, maxLabel-len(suffix)), " .")
	if name == "" {
		return ""
	}
	return name + suffix
}

// presentation returns label as miekg/dns prints a received name's label:
// dots, spaces and other special characters escaped with a backslash, bytes
// outside printable ASCII as \DDD. libp2p/zeroconf compares the names of
// the questions it receives, as miekg/dns unpacks them, with the names it
// was given as plain strings, so they must be written this way to match.
func presentation(label string) (string, error) {
	escaped := strings.NewReplacer(`\`, `\\`, `.`, `\.`).Replace(label)
	buf := make([]byte, 2*maxLabel+8)
	off, err := dns.PackDomainName(escaped+".", buf, 0, nil, false)
	if err != nil {
		return "", fmt.Errorf("dnssd: instance name %q: %w", label, err)
	}
	s, _, err := dns.UnpackDomainName(buf[:off], 0)
	if err != nil {
		return "", fmt.Errorf("dnssd: instance name %q: %w", label, err)
	}
	return strings.TrimSuffix(s, "."), nil
}

// Options tunes [Advertise].
type Options struct {
	// Interfaces are the names of the network interfaces to advertise on;
	// none means every interface that is up, multicast and not loopback.
	// An interface that is missing or down is waited for. The addresses of
	// all of them are announced on each, so give one interface when the
	// others lead to other networks.
	Interfaces []string
	// Host is the host label advertised as Host.local, the target of the
	// SRV record; empty means the system host name.
	Host string
	// Registered, if set, is called each time the service is registered:
	// at the start and after each change of addresses, with the instance
	// name in use (which has " (2)" or more after it when the name was
	// taken) and the addresses announced. It must not block.
	Registered func(name string, addrs []netip.Addr)
	// Logger receives what goes wrong and each registration; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Timings of [Advertise]: how long address changes must settle before the
// service is registered again, how often addresses are polled where netlink
// is not available, and how soon a failed registration is tried again; and
// how many names it tries when its name is taken.
const (
	settle       = 500 * time.Millisecond
	pollInterval = 10 * time.Second
	retryAfter   = 30 * time.Second
	maxRenames   = 20
)

// Advertise announces s on the local network until ctx ends, then sends the
// goodbye packets and returns nil. It answers queries for the service, its
// subtypes and the host name, and registers again (goodbye, then new
// announcements) when the addresses of the interfaces change; on Linux it
// learns of changes from netlink (RTMGRP_LINK and the address groups),
// elsewhere by polling every 10 s. While no interface has an address it
// advertises nothing and waits. It returns an error at once only if s is not
// valid or the host name cannot be found.
func Advertise(ctx context.Context, s Service, opts Options) error {
	if err := s.Validate(); err != nil {
		return err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	host, err := hostName(opts.Host)
	if err != nil {
		return err
	}
	a := &advertiser{s: s, opts: opts, log: log, host: host, txt: wireTXT(TXT(s))}
	changes := watch(ctx, log)
	defer a.stop()
	var retry <-chan time.Time
	for {
		ifaces, addrs := interfaceAddrs(opts.Interfaces)
		if a.cur == nil || !slices.Equal(addrs, a.addrs) {
			a.stop()
			retry = nil
			if len(addrs) == 0 {
				log.Info("dnssd: no address to advertise yet", "interfaces", opts.Interfaces)
			} else if err := a.start(ctx, ifaces, addrs); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				log.Warn("dnssd: cannot advertise the print queue", "err", err)
				retry = time.After(retryAfter)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-retry:
		case <-changes:
			// Let a burst of changes (an address replaced, a link coming
			// up with several addresses) settle before looking again.
			t := time.NewTimer(settle)
		burst:
			for {
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-changes:
					t.Reset(settle)
				case <-t.C:
					break burst
				}
			}
		}
	}
}

// advertiser holds the current registration, if any.
type advertiser struct {
	s     Service
	opts  Options
	log   *slog.Logger
	host  string       // FQDN, host.local.
	txt   []string     // as miekg/dns takes it: see wireTXT
	addrs []netip.Addr // announced by cur
	cur   *registration
}

// registration is the service registered once: libp2p's server and the
// responder that completes it.
type registration struct {
	server *zeroconf.Server
	resp   *responder
}

// start registers the service for the given interfaces and addresses,
// under the first of Name, "Name (2)"… that no one else holds.
func (a *advertiser) start(ctx context.Context, ifaces []net.Interface, addrs []netip.Addr) error {
	resp, err := newResponder(ifaces, a.host, addrs, a.log)
	if err != nil {
		return err
	}
	name, label, err := a.freeName(ctx, resp)
	if err != nil {
		resp.close()
		return err
	}
	resp.setService(label+"."+serviceType+".local.", uint16(a.s.Port), a.txt)
	ips := make([]string, len(addrs))
	for i, ip := range addrs {
		ips[i] = ip.String()
	}
	// The domain without its final dot: with it, libp2p appends ".local."
	// to a host name that already ends with ".local.".
	server, err := zeroconf.RegisterProxy(label, serviceType+","+strings.Join(subtypes, ","), "local",
		a.s.Port, a.host, ips, a.txt, ifaces, zeroconf.TTL(TTL))
	if err != nil {
		resp.close()
		return fmt.Errorf("dnssd: register: %w", err)
	}
	a.cur, a.addrs = &registration{server: server, resp: resp}, addrs
	a.log.Info("dnssd: advertising the print queue", "name", name, "host", a.host, "port", a.s.Port, "addrs", addrs)
	if a.opts.Registered != nil {
		a.opts.Registered(name, addrs)
	}
	return nil
}

// stop sends the goodbye packets of the current registration and closes it.
func (a *advertiser) stop() {
	if a.cur == nil {
		return
	}
	a.cur.server.Shutdown() // goodbye: every record again with TTL 0
	a.cur.resp.close()
	a.cur, a.addrs = nil, nil
}

// freeName returns the first instance name that no other responder claims
// when probed for, and its label as libp2p must be given it.
func (a *advertiser) freeName(ctx context.Context, resp *responder) (name, label string, err error) {
	for n := 1; n <= maxRenames; n++ {
		name = instanceName(a.s.Name, n)
		if label, err = presentation(name); err != nil {
			return "", "", err
		}
		taken, err := resp.probe(ctx, label+"."+serviceType+".local.", uint16(a.s.Port))
		if err != nil {
			return "", "", err
		}
		if !taken {
			return name, label, nil
		}
		a.log.Info("dnssd: instance name already taken on the network", "name", name)
	}
	return "", "", fmt.Errorf("dnssd: %q to %q are all taken", instanceName(a.s.Name, 1), name)
}

func subtypeNames() []string {
	names := make([]string, len(subtypes))
	for i, st := range subtypes {
		names[i] = st + "._sub." + serviceType + ".local."
	}
	return names
}

// hostName returns the FQDN host.local. for the given host label or, if it
// is empty, for the system host name: its first label, lower case, with only
// letters, digits and hyphens.
func hostName(h string) (string, error) {
	if h == "" {
		var err error
		if h, err = os.Hostname(); err != nil {
			return "", fmt.Errorf("dnssd: host name: %w", err)
		}
	}
	h, _, _ = strings.Cut(strings.ToLower(h), ".")
	h = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, h)
	h = strings.Trim(cut(h, maxLabel), "-")
	if h == "" {
		return "", errors.New("dnssd: no usable host name")
	}
	return h + ".local.", nil
}

// interfaceAddrs returns the interfaces to advertise on, those named (all
// when none are) that are up, multicast, not loopback and have an address,
// and their IPv4 and IPv6 unicast addresses, sorted.
func interfaceAddrs(names []string) ([]net.Interface, []netip.Addr) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, nil
	}
	var ifaces []net.Interface
	var addrs []netip.Addr
	for _, ifi := range all {
		if len(names) > 0 && !slices.Contains(names, ifi.Name) {
			continue
		}
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		ias, err := ifi.Addrs()
		if err != nil {
			continue
		}
		n := len(addrs)
		for _, ia := range ias {
			ipn, ok := ia.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if ip.IsGlobalUnicast() || ip.IsLinkLocalUnicast() {
				addrs = append(addrs, ip)
			}
		}
		if len(addrs) > n {
			ifaces = append(ifaces, ifi)
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return ifaces, slices.Compact(addrs)
}
