package dnssd

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/miekg/dns"
)

func exampleService() Service {
	return Service{
		Name:      "Relais – Mairie d'Exemple",
		Port:      631,
		MakeModel: "HP LaserJet Pro M404dn",
		Location:  "Mairie, salle France Services",
		AdminURL:  "http://relais.local/",
		Formats:   []string{"application/pdf", "image/pwg-raster", "image/urf", "image/jpeg"},
		UUID:      "urn:uuid:3f1a6c2e-8d1b-4c7e-9b5a-0c2d4e6f8a10",
		Color:     false,
		Duplex:    true,
		URF:       "W8,SRGB24,CP1,DM1,RS300-600,V1.4",
		Product:   "HP LaserJet Pro M404dn",
	}
}

func TestTXT(t *testing.T) {
	got := TXT(exampleService())
	want := []string{
		"txtvers=1",
		"qtotal=1",
		"rp=ipp/print",
		"ty=HP LaserJet Pro M404dn",
		"note=Mairie, salle France Services",
		"adminurl=http://relais.local/",
		"pdl=application/pdf,image/pwg-raster,image/urf,image/jpeg",
		"UUID=3f1a6c2e-8d1b-4c7e-9b5a-0c2d4e6f8a10",
		"Color=F",
		"Duplex=T",
		"URF=W8,SRGB24,CP1,DM1,RS300-600,V1.4",
		"kind=document",
		"priority=0",
		"product=(HP LaserJet Pro M404dn)",
		"printer-state=3",
		"printer-type=0x14",
	}
	if !slices.Equal(got, want) {
		t.Errorf("TXT =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, s := range got {
		if k, _, _ := strings.Cut(s, "="); strings.EqualFold(k, "TLS") || strings.EqualFold(k, "mopria-certified") {
			t.Errorf("TXT has %s; the queue is plain ipp and not Mopria-certified", s)
		}
	}
}

func TestTXTURFOnlyWithImageURF(t *testing.T) {
	s := exampleService()
	s.Formats = []string{"application/pdf", "image/pwg-raster"}
	s.Color = true
	s.Product = "(Relais)"
	txt := TXT(s)
	for _, kv := range txt {
		if strings.HasPrefix(kv, "URF=") {
			t.Errorf("TXT has %s without image/urf in pdl: %q", kv, txt)
		}
	}
	for _, kv := range []string{"pdl=application/pdf,image/pwg-raster", "Color=T", "product=(Relais)", "printer-type=0x1C"} {
		if !slices.Contains(txt, kv) {
			t.Errorf("TXT lacks %s: %q", kv, txt)
		}
	}
	if txt[0] != "txtvers=1" {
		t.Errorf("TXT starts with %s, want txtvers=1", txt[0])
	}
}

func TestTXTOmitsUnknownValues(t *testing.T) {
	txt := TXT(Service{Name: "Relais", Port: 631, Formats: []string{"application/pdf"}, UUID: "u", PrinterType: 0x801046})
	want := []string{"txtvers=1", "qtotal=1", "rp=ipp/print", "pdl=application/pdf", "UUID=u", "Color=F", "Duplex=F",
		"kind=document", "priority=0", "printer-state=3", "printer-type=0x801046"}
	if !slices.Equal(txt, want) {
		t.Errorf("TXT = %q, want %q", txt, want)
	}
}

func TestTXTStringsAtMost255Bytes(t *testing.T) {
	s := exampleService()
	s.Location = strings.Repeat("é", 200) // 400 bytes
	s.MakeModel = strings.Repeat("M", 300)
	for i := range 30 {
		s.Formats = append(s.Formats, "application/vnd.relais-test-"+strings.Repeat("x", i))
	}
	for _, kv := range TXT(s) {
		if len(kv) > maxTXTString {
			t.Errorf("%d bytes: %.40s…", len(kv), kv)
		}
		if !utf8.ValidString(kv) {
			t.Errorf("not valid UTF-8 after cutting: %.40q…", kv)
		}
		key, value, _ := strings.Cut(kv, "=")
		switch key {
		case "note":
			if value != strings.Repeat("é", (maxTXTString-len("note="))/2) {
				t.Errorf("note cut to %d bytes, want the most whole characters that fit", len(value))
			}
		case "pdl":
			formats := strings.Split(value, ",")
			if !slices.Equal(formats[:4], s.Formats[:4]) {
				t.Errorf("pdl lost its first formats: %q", formats[:4])
			}
			for _, f := range formats {
				if !slices.Contains(s.Formats, f) {
					t.Errorf("pdl has %q, a format cut in the middle", f)
				}
			}
		}
	}
}

func TestInstanceName(t *testing.T) {
	// "Relais: " is 8 bytes and each "Mairie d'Exemple–" 19, its "–" the
	// last 3: the third "–" takes bytes 62 to 64, across the 63-byte limit.
	long := "Relais: " + strings.Repeat("Mairie d'Exemple–", 5)
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"Relais – Mairie d'Exemple", 1, "Relais – Mairie d'Exemple"},
		{"Relais – Mairie d'Exemple", 2, "Relais – Mairie d'Exemple (2)"},
		{"  Relais\t\x00– Mairie.\n", 1, "Relais– Mairie"},
		{"Relais \xff\xfeà Vic", 1, "Relais à Vic"},
		{long, 1, long[:62]},
		{long, 2, long[:59] + " (2)"},
		{long, 12, long[:58] + " (12)"},
		{" . ", 1, ""},
	} {
		got := instanceName(c.in, c.n)
		if got != c.want {
			t.Errorf("instanceName(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
		if len(got) > maxLabel || !utf8.ValidString(got) {
			t.Errorf("instanceName(%q, %d) = %q: %d bytes, valid UTF-8 %v", c.in, c.n, got, len(got), utf8.ValidString(got))
		}
	}
	// Every length of a name made of 2-, 3- and 4-byte characters.
	for n := 1; n <= 40; n++ {
		name := strings.Repeat("é–😀", n)
		for _, k := range []int{1, 2, 10} {
			got := instanceName(name, k)
			if len(got) > maxLabel || !utf8.ValidString(got) {
				t.Fatalf("instanceName(%d×, %d) = %q (%d bytes)", n, k, got, len(got))
			}
			base := got
			if k >= 2 {
				var ok bool
				if base, ok = strings.CutSuffix(got, fmt.Sprintf(" (%d)", k)); !ok {
					t.Fatalf("instanceName(%d×, %d) = %q: no suffix", n, k, got)
				}
			}
			if !strings.HasPrefix(name, base) || base == "" || len(name) <= maxLabel && k == 1 && base != name {
				t.Fatalf("instanceName(%d×, %d) = %q: not the longest prefix that fits", n, k, got)
			}
		}
	}
}

func TestPresentationRoundTrips(t *testing.T) {
	for _, label := range []string{"Relais – Mairie d'Exemple (2)", `St. Jean \ Vic`, "plain"} {
		p, err := presentation(label)
		if err != nil {
			t.Fatal(err)
		}
		// What a querier sends for this instance, as miekg/dns unpacks it,
		// must equal the name libp2p/zeroconf is given.
		name := p + "._ipp._tcp.local."
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeSRV)
		wire, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		var back dns.Msg
		if err := back.Unpack(wire); err != nil {
			t.Fatal(err)
		}
		if back.Question[0].Name != name {
			t.Errorf("%q: sent as %q, received as %q", label, name, back.Question[0].Name)
		}
		// And the label on the wire is the name's bytes, unescaped.
		if got := wireLabel(t, wire); got != label {
			t.Errorf("%q: wire label %q", label, got)
		}
	}
}

// wireLabel returns the first label of the first question of a packed
// message.
func wireLabel(t *testing.T, msg []byte) string {
	t.Helper()
	const header = 12
	n := int(msg[header])
	return string(msg[header+1 : header+1+n])
}

func TestValidate(t *testing.T) {
	if err := exampleService().Validate(); err != nil {
		t.Errorf("example service: %v", err)
	}
	for name, change := range map[string]func(*Service){
		"no name":       func(s *Service) { s.Name = " .\t" },
		"no port":       func(s *Service) { s.Port = 0 },
		"port too big":  func(s *Service) { s.Port = 70000 },
		"no UUID":       func(s *Service) { s.UUID = "urn:uuid:" },
		"no format":     func(s *Service) { s.Formats = []string{" "} },
		"urf, no URF":   func(s *Service) { s.URF = "" },
		"several wrong": func(s *Service) { s.Port, s.UUID = -1, "" },
	} {
		s := exampleService()
		change(&s)
		if s.Validate() == nil {
			t.Errorf("%s: valid", name)
		}
	}
}

func TestHostName(t *testing.T) {
	for in, want := range map[string]string{
		"Relais-Mairie.example.org": "relais-mairie.local.",
		"pi_4 b":                    "pi4b.local.",
	} {
		if got, err := hostName(in); err != nil || got != want {
			t.Errorf("hostName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got, err := hostName("___"); err == nil {
		t.Errorf("hostName(___) = %q, want an error", got)
	}
}

// testResponder is a responder with records and no sockets, for answer.
func testResponder() (*responder, *records) {
	r := &responder{}
	rec := &records{
		instance: `Relais\ –\ Test._ipp._tcp.local.`,
		subtypes: subtypeNames(),
		host:     "relais.local.",
		port:     631,
		txt:      []string{"txtvers=1", "rp=ipp/print"},
		addrs:    []netip.Addr{netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("fe80::1")},
	}
	r.rec.Store(rec)
	return r, rec
}

func query(name string, qtype uint16, qu bool) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.Id = 0
	if qu {
		q.Question[0].Qclass |= unicastQ
	}
	return q
}

func TestAnswerSubtype(t *testing.T) {
	r, rec := testResponder()
	for _, name := range []string{"_print._sub._ipp._tcp.local.", "_UNIVERSAL._sub._ipp._tcp.local."} {
		resp, unicast := r.answer(query(name, dns.TypePTR, false), false)
		if resp == nil || unicast {
			t.Fatalf("%s: response %v, unicast %v", name, resp, unicast)
		}
		if len(resp.Answer) != 1 {
			t.Fatalf("%s: answers %v", name, resp.Answer)
		}
		ptr, ok := resp.Answer[0].(*dns.PTR)
		if !ok || !strings.EqualFold(ptr.Hdr.Name, name) || ptr.Ptr != rec.instance || ptr.Hdr.Class != dns.ClassINET || ptr.Hdr.Ttl != TTL {
			t.Errorf("%s: answer %v", name, resp.Answer[0])
		}
		var types []uint16
		for _, rr := range resp.Extra {
			types = append(types, rr.Header().Rrtype)
			if rr.Header().Class != dns.ClassINET|cacheFlush {
				t.Errorf("%s: additional %v without the cache-flush bit", name, rr)
			}
		}
		if !slices.Equal(types, []uint16{dns.TypeSRV, dns.TypeTXT, dns.TypeA, dns.TypeAAAA}) {
			t.Errorf("%s: additional records %v", name, resp.Extra)
		}
		if txt := resp.Extra[1].(*dns.TXT).Txt; !slices.Equal(txt, rec.txt) {
			t.Errorf("%s: TXT %q", name, txt)
		}
		if resp.Question != nil || resp.Id != 0 || !resp.Response || !resp.Authoritative {
			t.Errorf("%s: header %+v, questions %v", name, resp.MsgHdr, resp.Question)
		}
	}
}

func TestAnswerUnicastAndLegacy(t *testing.T) {
	r, _ := testResponder()
	if _, unicast := r.answer(query("_print._sub._ipp._tcp.local.", dns.TypePTR, true), false); !unicast {
		t.Error("QU question answered by multicast")
	}
	q := query("_print._sub._ipp._tcp.local.", dns.TypePTR, false)
	q.Id = 4242
	resp, unicast := r.answer(q, true)
	if resp == nil || !unicast || resp.Id != 4242 || len(resp.Question) != 1 {
		t.Fatalf("legacy query: unicast %v, response %v", unicast, resp)
	}
	for _, rr := range append(resp.Answer, resp.Extra...) {
		if rr.Header().Ttl > legacyTTL || rr.Header().Class&cacheFlush != 0 {
			t.Errorf("legacy answer %v: TTL above %d or cache-flush bit", rr, legacyTTL)
		}
	}
}

func TestAnswerHost(t *testing.T) {
	r, _ := testResponder()
	resp, _ := r.answer(query("Relais.Local.", dns.TypeA, false), false)
	if resp == nil || len(resp.Answer) != 1 || len(resp.Extra) != 1 {
		t.Fatalf("A query: %v", resp)
	}
	if a, ok := resp.Answer[0].(*dns.A); !ok || a.A.String() != "10.99.0.1" {
		t.Errorf("A answer %v", resp.Answer[0])
	}
	if aaaa, ok := resp.Extra[0].(*dns.AAAA); !ok || aaaa.AAAA.String() != "fe80::1" {
		t.Errorf("A query: additional %v, want the AAAA record", resp.Extra[0])
	}
	resp, _ = r.answer(query("relais.local.", dns.TypeANY, false), false)
	if resp == nil || len(resp.Answer) != 2 || len(resp.Extra) != 0 {
		t.Errorf("ANY query: %v", resp)
	}
}

func TestAnswerNothing(t *testing.T) {
	r, rec := testResponder()
	known := query("_print._sub._ipp._tcp.local.", dns.TypePTR, false)
	known.Answer = []dns.RR{&dns.PTR{Hdr: header("_print._sub._ipp._tcp.local.", dns.TypePTR, 0, TTL), Ptr: rec.instance}}
	response := query("_print._sub._ipp._tcp.local.", dns.TypePTR, false)
	response.Response = true
	for name, q := range map[string]*dns.Msg{
		"main type, libp2p's": query("_ipp._tcp.local.", dns.TypePTR, false),
		"other subtype":       query("_fax._sub._ipp._tcp.local.", dns.TypePTR, false),
		"SRV of a subtype":    query("_print._sub._ipp._tcp.local.", dns.TypeSRV, false),
		"other host":          query("other.local.", dns.TypeA, false),
		"known answer":        known,
		"a response":          response,
	} {
		if resp, _ := r.answer(q, false); resp != nil {
			t.Errorf("%s: answered %v", name, resp)
		}
	}
}

func TestAnswerNoSubtypeBeforeTheNameIsChosen(t *testing.T) {
	r, rec := testResponder()
	rec.instance = ""
	if resp, _ := r.answer(query("_print._sub._ipp._tcp.local.", dns.TypePTR, false), false); resp != nil {
		t.Errorf("answered before the probe: %v", resp)
	}
	if resp, _ := r.answer(query("relais.local.", dns.TypeA, false), false); resp == nil {
		t.Error("host address not answered while probing")
	}
}

func TestClaims(t *testing.T) {
	name := `Relais\ –\ Test._ipp._tcp.local.`
	srv := func(owner string, ttl uint32) *dns.Msg {
		m := new(dns.Msg)
		m.Response = true
		m.Answer = []dns.RR{&dns.SRV{Hdr: header(owner, dns.TypeSRV, cacheFlush, ttl), Port: 631, Target: "other.local."}}
		return m
	}
	if !claims(srv(strings.ToUpper(name), TTL), name) {
		t.Error("an SRV record of the name, in other case, is no claim")
	}
	if claims(srv(name, 0), name) {
		t.Error("a goodbye is a claim")
	}
	if claims(srv(`Other._ipp._tcp.local.`, TTL), name) {
		t.Error("another name is a claim")
	}
	extra := srv("Other._ipp._tcp.local.", TTL)
	extra.Extra = []dns.RR{&dns.TXT{Hdr: header(name, dns.TypeTXT, cacheFlush, TTL), Txt: []string{"txtvers=1"}}}
	if !claims(extra, name) {
		t.Error("a TXT record of the name among the additional records is no claim")
	}
}
