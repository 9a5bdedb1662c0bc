package dnssd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The responder completes libp2p/zeroconf: it probes for the instance name
// before libp2p is given it (RFC 6762 §8.1), then answers what libp2p leaves
// unanswered, PTR queries for the subtypes (RFC 6763 §7.1) and A/AAAA
// queries for the host name (RFC 6762 §6), on the chosen interfaces only.
// libp2p makes the announcements and goodbyes, which carry the subtype
// PTRs, and answers everything else.

var (
	mdnsIPv4 = netip.MustParseAddr("224.0.0.251")
	mdnsIPv6 = netip.MustParseAddr("ff02::fb")
)

const (
	mdnsPort   = 5353
	cacheFlush = 1 << 15 // rrclass top bit of a unique record (RFC 6762 §10.2)
	unicastQ   = 1 << 15 // qclass top bit of a QU question (RFC 6762 §5.4)
	legacyTTL  = 10      // cap for legacy unicast answers (RFC 6762 §6.7)

	probes        = 3                      // probe queries sent (RFC 6762 §8.1)
	probeInterval = 250 * time.Millisecond // between them, and after the last
)

// records are what the responder answers with; names are fully qualified,
// in presentation form. Until the instance name is chosen, instance is
// empty and only the host's addresses are answered for.
type records struct {
	instance string
	subtypes []string
	host     string
	port     uint16
	txt      []string
	addrs    []netip.Addr
}

type responder struct {
	rec     atomic.Pointer[records]
	probing atomic.Pointer[probe] // while probing for an instance name
	ifaces  map[int]bool          // interface indexes
	log     *slog.Logger
	v4      *ipv4.PacketConn
	v6      *ipv6.PacketConn
	closed  atomic.Bool
	wg      sync.WaitGroup
}

// probe is a name being probed for, and the signal that a response claims
// it.
type probe struct {
	name  string // lower case
	once  sync.Once
	taken chan struct{}
}

// newResponder listens for mDNS messages on the given interfaces, over IPv4
// and, where it can join the group, IPv6, and answers for host.
func newResponder(ifaces []net.Interface, host string, addrs []netip.Addr, log *slog.Logger) (*responder, error) {
	r := &responder{ifaces: make(map[int]bool), log: log}
	r.rec.Store(&records{host: host, subtypes: subtypeNames(), addrs: addrs})
	for _, ifi := range ifaces {
		r.ifaces[ifi.Index] = true
	}
	var errs []error
	// Listening on the group address makes the net package bind the
	// wildcard address with SO_REUSEADDR, beside libp2p's sockets.
	if c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: mdnsIPv4.AsSlice(), Port: mdnsPort}); err != nil {
		errs = append(errs, err)
	} else {
		p := ipv4.NewPacketConn(c)
		joined := 0
		for _, ifi := range ifaces {
			if p.JoinGroup(&ifi, &net.UDPAddr{IP: mdnsIPv4.AsSlice()}) == nil {
				joined++
			}
		}
		if err := errors.Join(p.SetControlMessage(ipv4.FlagInterface, true), p.SetMulticastTTL(255), p.SetTTL(255)); err != nil || joined == 0 {
			errs = append(errs, fmt.Errorf("IPv4 multicast: %d interfaces joined, %v", joined, err))
			p.Close()
		} else {
			r.v4 = p
		}
	}
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: mdnsIPv6.AsSlice(), Port: mdnsPort}); err != nil {
		errs = append(errs, err)
	} else {
		p := ipv6.NewPacketConn(c)
		joined := 0
		for _, ifi := range ifaces {
			if p.JoinGroup(&ifi, &net.UDPAddr{IP: mdnsIPv6.AsSlice()}) == nil {
				joined++
			}
		}
		if err := errors.Join(p.SetControlMessage(ipv6.FlagInterface, true), p.SetMulticastHopLimit(255), p.SetHopLimit(255)); err != nil || joined == 0 {
			errs = append(errs, fmt.Errorf("IPv6 multicast: %d interfaces joined, %v", joined, err))
			p.Close()
		} else {
			r.v6 = p
		}
	}
	if r.v4 == nil && r.v6 == nil {
		return nil, fmt.Errorf("dnssd: responder: %w", errors.Join(errs...))
	}
	if r.v4 != nil {
		r.wg.Go(func() {
			r.listen(func(b []byte) (int, int, net.Addr, error) {
				n, cm, src, err := r.v4.ReadFrom(b)
				if cm == nil {
					return n, 0, src, err
				}
				return n, cm.IfIndex, src, err
			}, func(b []byte, ifIndex int, dst *net.UDPAddr) error {
				_, err := r.v4.WriteTo(b, &ipv4.ControlMessage{IfIndex: ifIndex}, dst)
				return err
			}, mdnsIPv4)
		})
	}
	if r.v6 != nil {
		r.wg.Go(func() {
			r.listen(func(b []byte) (int, int, net.Addr, error) {
				n, cm, src, err := r.v6.ReadFrom(b)
				if cm == nil {
					return n, 0, src, err
				}
				return n, cm.IfIndex, src, err
			}, func(b []byte, ifIndex int, dst *net.UDPAddr) error {
				_, err := r.v6.WriteTo(b, &ipv6.ControlMessage{IfIndex: ifIndex}, dst)
				return err
			}, mdnsIPv6)
		})
	}
	return r, nil
}

// setService makes the responder answer for the instance, from now on.
func (r *responder) setService(instance string, port uint16, txt []string) {
	rec := *r.rec.Load()
	rec.instance, rec.port, rec.txt = instance, port, txt
	r.rec.Store(&rec)
}

// probe reports whether another responder claims the instance name (RFC
// 6762 §8.1): it multicasts three queries for it, 250 ms apart, with the
// SRV record it would have in their authority section, and listens for a
// response holding a record of that name until 250 ms after the last. A
// goodbye (TTL 0) is no claim. Simultaneous probes are not tie-broken.
func (r *responder) probe(ctx context.Context, instance string, port uint16) (bool, error) {
	p := &probe{name: strings.ToLower(instance), taken: make(chan struct{})}
	r.probing.Store(p)
	defer r.probing.Store(nil)
	q := &dns.Msg{
		Question: []dns.Question{{Name: instance, Qtype: dns.TypeANY, Qclass: dns.ClassINET}},
		Ns:       []dns.RR{&dns.SRV{Hdr: header(instance, dns.TypeSRV, 0, TTL), Port: port, Target: r.rec.Load().host}},
		Compress: true,
	}
	out, err := q.Pack()
	if err != nil {
		return false, fmt.Errorf("dnssd: probe for %s: %w", instance, err)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for range probes {
		r.multicast(out)
		t.Reset(probeInterval)
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-p.taken:
			return true, nil
		case <-t.C:
		}
	}
	return false, nil
}

// claims reports whether response m holds a live record named name.
func claims(m *dns.Msg, name string) bool {
	for _, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			if h := rr.Header(); h.Ttl > 0 && strings.EqualFold(h.Name, name) {
				return true
			}
		}
	}
	return false
}

// multicast sends a packed message to the mDNS group on every interface.
func (r *responder) multicast(out []byte) {
	for index := range r.ifaces {
		if r.v4 != nil {
			if _, err := r.v4.WriteTo(out, &ipv4.ControlMessage{IfIndex: index}, &net.UDPAddr{IP: mdnsIPv4.AsSlice(), Port: mdnsPort}); err != nil {
				r.log.Debug("dnssd: cannot send a probe", "interface", index, "err", err)
			}
		}
		if r.v6 != nil {
			if _, err := r.v6.WriteTo(out, &ipv6.ControlMessage{IfIndex: index}, &net.UDPAddr{IP: mdnsIPv6.AsSlice(), Port: mdnsPort}); err != nil {
				r.log.Debug("dnssd: cannot send a probe", "interface", index, "err", err)
			}
		}
	}
}

// close stops the responder and waits for it.
func (r *responder) close() {
	r.closed.Store(true)
	if r.v4 != nil {
		r.v4.Close()
	}
	if r.v6 != nil {
		r.v6.Close()
	}
	r.wg.Wait()
}

// listen reads messages until the connection is closed: it answers queries
// for the responder's names and, while probing, looks for responses that
// claim the name probed for.
func (r *responder) listen(read func([]byte) (int, int, net.Addr, error), write func([]byte, int, *net.UDPAddr) error, group netip.Addr) {
	buf := make([]byte, 9000)
	for {
		n, ifIndex, src, err := read(buf)
		if err != nil {
			if r.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		from, ok := src.(*net.UDPAddr)
		if !ok || !r.ifaces[ifIndex] {
			continue // another interface: not ours to answer on
		}
		// miekg/dns rejects a whole message for one record it finds
		// malformed, such as the NSEC records with an empty bitmap block
		// that python-zeroconf sends, but keeps the sections before it.
		var q dns.Msg
		if q.Unpack(buf[:n]) != nil && len(q.Question)+len(q.Answer)+len(q.Ns) == 0 {
			continue
		}
		if p := r.probing.Load(); p != nil && q.Response && claims(&q, p.name) {
			p.once.Do(func() { close(p.taken) })
		}
		resp, unicast := r.answer(&q, from.Port != mdnsPort)
		if resp == nil {
			continue
		}
		out, err := resp.Pack()
		if err != nil {
			r.log.Warn("dnssd: cannot pack an answer", "err", err)
			continue
		}
		dst := &net.UDPAddr{IP: group.AsSlice(), Port: mdnsPort}
		if unicast {
			dst = from
		}
		if err := write(out, ifIndex, dst); err != nil && !r.closed.Load() {
			r.log.Debug("dnssd: cannot send an answer", "to", dst, "err", err)
		}
	}
}

// answer returns the response to query q, if it asks for a subtype or the
// host's addresses, and whether it goes by unicast to the sender: when the
// sender is a legacy resolver (source port other than 5353, RFC 6762 §6.7)
// or asked for unicast (QU, §5.4).
func (r *responder) answer(q *dns.Msg, legacy bool) (resp *dns.Msg, unicast bool) {
	if q.Response || q.Opcode != dns.OpcodeQuery || q.Rcode != dns.RcodeSuccess {
		return nil, false
	}
	rec := r.rec.Load()
	ttl := uint32(TTL)
	flush := uint16(cacheFlush)
	if legacy {
		ttl, flush, unicast = legacyTTL, 0, true
	}
	var answers []dns.RR
	var v4, v6, browsed bool
	for _, qu := range q.Question {
		name := strings.ToLower(qu.Name)
		anyType := qu.Qtype == dns.TypeANY
		matched := false
		if i := slices.Index(rec.subtypes, name); i >= 0 && rec.instance != "" && (anyType || qu.Qtype == dns.TypePTR) {
			ptr := &dns.PTR{Hdr: header(rec.subtypes[i], dns.TypePTR, 0, ttl), Ptr: rec.instance}
			if !known(q.Answer, ptr) {
				answers = append(answers, ptr)
				browsed, matched = true, true
			}
		}
		if name == rec.host {
			if anyType || qu.Qtype == dns.TypeA {
				v4, matched = true, true
			}
			if anyType || qu.Qtype == dns.TypeAAAA {
				v6, matched = true, true
			}
		}
		if matched && qu.Qclass&unicastQ != 0 {
			unicast = true
		}
	}
	answers = append(answers, rec.addrRecords(v4, v6, flush, ttl)...)
	if len(answers) == 0 {
		return nil, false
	}
	// The additional records a browser needs next (RFC 6763 §12.1), and an
	// address question's other family (RFC 6762 §6.2).
	var extra []dns.RR
	if browsed {
		extra = append(extra,
			&dns.SRV{Hdr: header(rec.instance, dns.TypeSRV, flush, ttl), Port: rec.port, Target: rec.host},
			&dns.TXT{Hdr: header(rec.instance, dns.TypeTXT, flush, ttl), Txt: rec.txt})
	}
	extra = append(extra, rec.addrRecords(browsed || v6 && !v4, browsed || v4 && !v6, flush, ttl)...)
	extra = slices.DeleteFunc(extra, func(rr dns.RR) bool {
		return slices.ContainsFunc(answers, func(a dns.RR) bool { return dns.IsDuplicate(a, rr) })
	})
	resp = &dns.Msg{
		MsgHdr:   dns.MsgHdr{Response: true, Authoritative: true},
		Compress: true,
		Answer:   answers,
		Extra:    extra,
	}
	if legacy {
		resp.Id = q.Id
		resp.Question = q.Question
	}
	return resp, unicast
}

// addrRecords returns the host's A records if v4, and AAAA if v6.
func (rec *records) addrRecords(v4, v6 bool, flush uint16, ttl uint32) []dns.RR {
	var rrs []dns.RR
	for _, ip := range rec.addrs {
		switch {
		case ip.Is4() && v4:
			rrs = append(rrs, &dns.A{Hdr: header(rec.host, dns.TypeA, flush, ttl), A: ip.AsSlice()})
		case ip.Is6() && v6:
			rrs = append(rrs, &dns.AAAA{Hdr: header(rec.host, dns.TypeAAAA, flush, ttl), AAAA: ip.AsSlice()})
		}
	}
	return rrs
}

func header(name string, rrtype, flush uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET | flush, Ttl: ttl}
}

// known reports whether the querier listed ptr among its known answers with
// at least half its TTL left, so that it need not be sent (RFC 6762 §7.1).
func known(knownAnswers []dns.RR, ptr *dns.PTR) bool {
	for _, rr := range knownAnswers {
		k, ok := rr.(*dns.PTR)
		if ok && strings.EqualFold(k.Hdr.Name, ptr.Hdr.Name) && strings.EqualFold(k.Ptr, ptr.Ptr) && k.Hdr.Ttl >= ptr.Hdr.Ttl/2 {
			return true
		}
	}
	return false
}
