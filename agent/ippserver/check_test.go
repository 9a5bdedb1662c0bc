package ippserver

import (
	"fmt"

	"github.com/OpenPrinting/goipp"
)

// checkResponse checks what RFC 8011 asks of every response to req: the
// request's version (or, when it is not supported, 1.1 or 2.0) and
// request-id, attributes-charset and attributes-natural-language first,
// groups in order, no attribute twice in a group, a short status-message.
func checkResponse(req, resp *goipp.Message) error {
	st := goipp.Status(resp.Code)
	switch {
	case st == goipp.StatusErrorVersionNotSupported:
		if v := resp.Version; v != goipp.MakeVersion(1, 1) && v != goipp.MakeVersion(2, 0) {
			return fmt.Errorf("version-not-supported answered with version %s", v)
		}
	case resp.Version != req.Version:
		return fmt.Errorf("response version %s to a %s request", resp.Version, req.Version)
	}
	if resp.RequestID != req.RequestID {
		return fmt.Errorf("request-id %d answered with %d", req.RequestID, resp.RequestID)
	}
	if len(resp.Groups) == 0 || resp.Groups[0].Tag != goipp.TagOperationGroup || len(resp.Groups[0].Attrs) < 2 {
		return fmt.Errorf("the response does not start with operation attributes")
	}
	op := resp.Groups[0].Attrs
	if op[0].Name != "attributes-charset" || op[0].Values[0].T != goipp.TagCharset ||
		op[1].Name != "attributes-natural-language" || op[1].Values[0].T != goipp.TagLanguage {
		return fmt.Errorf("the response starts with %s and %s", op[0].Name, op[1].Name)
	}
	if m := values(op, "status-message"); len(m) > 0 && (m[0].T != goipp.TagText || len(m[0].V.String()) > 255) {
		return fmt.Errorf("bad status-message %v", m)
	}
	order := map[goipp.Tag]int{goipp.TagOperationGroup: 0, goipp.TagUnsupportedGroup: 1, goipp.TagJobGroup: 2, goipp.TagPrinterGroup: 2}
	last := 0
	for i, g := range resp.Groups {
		rank, ok := order[g.Tag]
		if !ok || rank < last || (i > 0 && g.Tag == goipp.TagOperationGroup) {
			return fmt.Errorf("group %s out of order", g.Tag)
		}
		last = rank
		seen := map[string]bool{}
		for _, a := range g.Attrs {
			if seen[a.Name] {
				return fmt.Errorf("%s twice in the %s group", a.Name, g.Tag)
			}
			seen[a.Name] = true
			if len(a.Values) == 0 {
				return fmt.Errorf("%s has no value", a.Name)
			}
		}
	}
	return nil
}
