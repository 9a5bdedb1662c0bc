package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/relais-fr/relais/agent/dnssd"
	"github.com/relais-fr/relais/agent/ippserver"
	"github.com/relais-fr/relais/agent/upstream"
)

// readvertiseEvery is how often the agent compares what it advertises with
// what its IPP server says, which follows the site printer's capabilities.
const readvertiseEvery = 5 * time.Minute

// advertise announces the IPP queue over DNS-SD until ctx ends. The TXT
// record is built from the agent's own Get-Printer-Attributes answer, so it
// always says what the queue says; when that changes (the site's printer
// was replaced, or answered for the first time), the service is announced
// anew.
func (a *agent) advertise(ctx context.Context, addr net.Addr) error {
	port := addr.(*net.TCPAddr).Port
	self := &upstream.Client{URI: fmt.Sprintf("ipp://%s%s", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), ippserver.Path)}
	var current dnssd.Service
	stop := func() {}
	defer func() { stop() }()
	for {
		svc, err := a.service(ctx, self, port)
		switch {
		case err != nil:
			slog.Warn("DNS-SD: cannot read the queue's attributes", "err", err)
		case !reflect.DeepEqual(svc, current):
			stop()
			current = svc
			stop = startAdvertising(ctx, svc)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(readvertiseEvery):
		}
	}
}

// startAdvertising advertises svc until the returned function is called,
// which waits for the goodbye to be sent.
func startAdvertising(ctx context.Context, svc dnssd.Service) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := dnssd.Advertise(ctx, svc, dnssd.Options{
			Registered: func(name string, addrs []netip.Addr) {
				slog.Info("DNS-SD: advertised", "name", name, "addresses", addrs)
			},
		})
		if err != nil {
			slog.Error("DNS-SD: cannot advertise", "err", err)
		}
	}()
	return func() { cancel(); <-done }
}

// service describes the queue as its own IPP server does.
func (a *agent) service(ctx context.Context, self *upstream.Client, port int) (dnssd.Service, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	attrs, err := self.PrinterAttributes(ctx, "printer-make-and-model", "printer-location", "printer-more-info",
		"printer-uuid", "document-format-supported", "color-supported", "sides-supported", "urf-supported", "printer-name")
	if err != nil {
		return dnssd.Service{}, err
	}
	str := func(name string) string {
		if v := upstream.Find(attrs, name); len(v) > 0 {
			return v[0].V.String()
		}
		return ""
	}
	list := func(name string) []string {
		var out []string
		for _, v := range upstream.Find(attrs, name) {
			out = append(out, v.V.String())
		}
		return out
	}
	svc := dnssd.Service{
		Name:      "Relais – " + str("printer-name"),
		Port:      port,
		MakeModel: str("printer-make-and-model"),
		Location:  str("printer-location"),
		AdminURL:  a.localPageURL(),
		UUID:      str("printer-uuid"),
		Formats:   advertisedFormats(list("document-format-supported")),
		Color:     str("color-supported") == "true",
		URF:       strings.Join(list("urf-supported"), ","),
		Product:   "(" + str("printer-make-and-model") + ")",
	}
	for _, s := range list("sides-supported") {
		if strings.HasPrefix(s, "two-sided") {
			svc.Duplex = true
		}
	}
	if svc.URF == "" {
		svc.Formats = slices.DeleteFunc(svc.Formats, func(f string) bool { return f == "image/urf" })
	}
	return svc, svc.Validate()
}

// localPageURL is the address of the local page under the agent's mDNS
// host name, which every client that found the queue can resolve.
func (a *agent) localPageURL() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return ""
	}
	host, _, _ = strings.Cut(host, ".")
	if _, port, err := net.SplitHostPort(a.cfg.Web.Listen); err == nil && port != "80" {
		return "http://" + net.JoinHostPort(host+".local", port) + "/"
	}
	return "http://" + host + ".local/"
}

// advertisedFormats orders the formats as clients prefer them and leaves
// out application/octet-stream, which is not a format.
func advertisedFormats(formats []string) []string {
	var out []string
	for _, pref := range []string{"application/pdf", "image/urf", "image/pwg-raster", "image/jpeg"} {
		for _, f := range formats {
			if f == pref {
				out = append(out, f)
			}
		}
	}
	for _, f := range formats {
		if f != "application/octet-stream" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}
