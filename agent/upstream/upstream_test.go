package upstream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/OpenPrinting/goipp"
)

func TestHTTPURL(t *testing.T) {
	for in, want := range map[string]string{
		"ipp://192.0.2.1/ipp/print":      "http://192.0.2.1:631/ipp/print",
		"ipps://printer.local/ipp/print": "https://printer.local:631/ipp/print",
		"ipp://[2001:db8::1]/ipp/print":  "http://[2001:db8::1]:631/ipp/print",
		"ipp://192.0.2.1:8631/ipp/print": "http://192.0.2.1:8631/ipp/print",
		"http://192.0.2.1:631/ipp/print": "http://192.0.2.1:631/ipp/print",
	} {
		if got, err := HTTPURL(in); err != nil || got != want {
			t.Errorf("HTTPURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"lpd://192.0.2.1/queue", "ipp:///ipp/print", "::"} {
		if got, err := HTTPURL(bad); err == nil {
			t.Errorf("HTTPURL(%q) = %q, want an error", bad, got)
		}
	}
}

func TestDoStatusAndLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req goipp.Message
		if err := req.Decode(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if uri := Find(req.Operation, "printer-uri"); len(uri) != 1 || !strings.HasPrefix(uri[0].V.String(), "ipp://") {
			http.Error(w, "no printer-uri", http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/busy":
			resp := goipp.NewResponse(req.Version, goipp.StatusErrorBusy, req.RequestID)
			b, _ := resp.EncodeBytes()
			w.Write(b)
		case "/garbage":
			w.Write([]byte("<html>not IPP</html>"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c := &Client{URI: "ipp://" + host + "/busy"}
	_, err := c.PrinterAttributes(context.Background())
	var se *StatusError
	if !errors.As(err, &se) || se.Status != goipp.StatusErrorBusy {
		t.Errorf("busy: %v", err)
	}
	c = &Client{URI: "ipp://" + host + "/garbage"}
	if _, err := c.PrinterAttributes(context.Background()); err == nil || !strings.Contains(err.Error(), "bad IPP response") {
		t.Errorf("garbage: %v", err)
	}
	c = &Client{URI: "ipp://" + host + "/none"}
	if _, err := c.PrinterAttributes(context.Background()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
}
