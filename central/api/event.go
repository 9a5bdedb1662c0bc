package api

import "time"

// EventType says what an Event reports.
type EventType string

// Event types.
const (
	EventPrintCompleted EventType = "print.completed" // a print job finished
	EventPrintFailed    EventType = "print.failed"    // a print job was aborted by an error
	EventPrintCanceled  EventType = "print.canceled"  // a print job was canceled (user, expiry, central)
	EventCopyCompleted  EventType = "copy.completed"  // a button copy (scan then print) finished
	EventScanCompleted  EventType = "scan.completed"  // a scan reached the inbox
	EventScanFailed     EventType = "scan.failed"     // a scan was aborted by an error
	EventButtonPressed  EventType = "button.pressed"  // the visitor made a gesture
	EventFaultRaised    EventType = "fault.raised"    // a fault started
	EventFaultCleared   EventType = "fault.cleared"   // a fault ended
	EventWiFiDaily      EventType = "wifi.daily"      // distinct Wi-Fi visitors of one day
	EventAgentStarted   EventType = "agent.started"   // the agent process started
)

// Source is where a print job came from.
type Source string

// Source values.
const (
	SourcePC      Source = "pc"      // a computer (IPP Everywhere)
	SourcePhone   Source = "phone"   // a phone or tablet
	SourceCopy    Source = "copy"    // a button copy
	SourceCentral Source = "central" // a command from central (test page)
)

// Gesture is a press of the site's button.
type Gesture string

// Gesture values.
const (
	GestureShort    Gesture = "short"    // copy, or release held prints
	GestureLong     Gesture = "long"     // scan to the inbox
	GestureVeryLong Gesture = "verylong" // print the status page
)

// Event is one item of the events topic. Usage fields are counts only: no
// field can carry a job name, a file name, a user name or a MAC address.
//
// Seq, ID, Time and Type are always set. The other fields depend on Type:
// those before the semicolon are required, those after it allowed, and any
// other is forbidden.
//
//	print.completed  pages, source; sheets, color, duplex, bytes, format
//	print.failed     pages, source, reason; sheets, color, duplex, bytes, format
//	print.canceled   pages, source; reason, sheets, color, duplex, bytes, format
//	copy.completed   pages; sheets, color, duplex
//	scan.completed   pages, format; bytes, color, duplex
//	scan.failed      reason; pages
//	button.pressed   gesture;
//	fault.raised     fault;
//	fault.cleared    fault;
//	wifi.daily       day, visitors;
//	agent.started    version;
//
// Optional numbers and booleans are pointers so that zero and absent differ;
// with Go 1.26 write Pages: new(3).
type Event struct {
	// Seq is the agent's monotonic outbox sequence number, from 1.
	Seq uint64 `json:"seq"`
	// ID is a UUIDv7 in canonical lowercase form, unique across agents.
	ID   string    `json:"id"`
	Time time.Time `json:"ts"`
	Type EventType `json:"type"`

	// Usage (print.*, copy.completed, scan.*).
	Pages  *int   `json:"pages,omitempty"`  // impressions (page sides), or pages scanned
	Sheets *int   `json:"sheets,omitempty"` // sheets of paper, at most Pages
	Color  *bool  `json:"color,omitempty"`
	Duplex *bool  `json:"duplex,omitempty"`
	Bytes  *int64 `json:"bytes,omitempty"`  // document size
	Format string `json:"format,omitempty"` // MIME type, such as "application/pdf"
	Source Source `json:"source,omitempty"`

	// Reason is a failure keyword (print.failed, scan.failed, print.canceled),
	// such as "media-jam" or "document-format-not-supported".
	Reason   string  `json:"reason,omitempty"`
	Gesture  Gesture `json:"gesture,omitempty"`  // button.pressed
	Fault    *Fault  `json:"fault,omitempty"`    // fault.raised, fault.cleared
	Day      string  `json:"day,omitempty"`      // wifi.daily: YYYY-MM-DD, local day of the site
	Visitors *int    `json:"visitors,omitempty"` // wifi.daily: distinct stations that day
	Version  string  `json:"version,omitempty"`  // agent.started
}

// eventTypeRules lists, for each event type, the optional fields (by JSON
// name) it requires and those it allows; every other optional field is
// forbidden. Validate and the schema both derive from this table.
var eventTypeRules = []struct {
	typ      EventType
	required []string
	allowed  []string
}{
	{EventPrintCompleted, []string{"pages", "source"}, printDetails},
	{EventPrintFailed, []string{"pages", "source", "reason"}, printDetails},
	{EventPrintCanceled, []string{"pages", "source"}, append([]string{"reason"}, printDetails...)},
	{EventCopyCompleted, []string{"pages"}, []string{"sheets", "color", "duplex"}},
	{EventScanCompleted, []string{"pages", "format"}, []string{"bytes", "color", "duplex"}},
	{EventScanFailed, []string{"reason"}, []string{"pages"}},
	{EventButtonPressed, []string{"gesture"}, nil},
	{EventFaultRaised, []string{"fault"}, nil},
	{EventFaultCleared, []string{"fault"}, nil},
	{EventWiFiDaily, []string{"day", "visitors"}, nil},
	{EventAgentStarted, []string{"version"}, nil},
}

var printDetails = []string{"sheets", "color", "duplex", "bytes", "format"}

// EventTypes returns every event type, in the contract's order.
func EventTypes() []EventType {
	ts := make([]EventType, len(eventTypeRules))
	for i, r := range eventTypeRules {
		ts[i] = r.typ
	}
	return ts
}

// Validate reports whether e satisfies the contract.
func (e Event) Validate() error { return e.validate("") }

func (e Event) validate(path string) error {
	if err := checkStruct(path, e); err != nil {
		return err
	}
	if e.Sheets != nil && e.Pages != nil && *e.Sheets > *e.Pages {
		return invalid(join(path, "sheets"), "must be <= pages")
	}
	return nil
}

// EventBatch is the batch form of the events topic: {"events":[...]}.
type EventBatch struct {
	Events []Event `json:"events"`
}

// Validate reports whether b satisfies the contract, including the
// MaxBatchEvents limit.
func (b EventBatch) Validate() error { return b.validate("") }

func (b EventBatch) validate(path string) error { return checkStruct(path, b) }
