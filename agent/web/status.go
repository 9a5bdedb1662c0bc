package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/relais-fr/relais/agent/printq"
	"github.com/relais-fr/relais/central/api"
)

// row is a label and a value of the technician's page.
type row struct{ Label, Value string }

type markerView struct {
	Name, Kind, Color, Level string
	Percent                  int // 0-100 for the bar; -1 when unknown
}

type queueJob struct {
	ID                                    int
	State, Created, Source, Size, Reasons string
	Cancel                                bool
}

type faultView struct{ Device, Code, Severity, Since string }

type statusData struct {
	*base
	Flash   *flash
	Devices []device
	Printer []row
	Markers []markerView
	Queue   []queueJob
	Counts  string
	Scans   []row
	Scanner []row
	WiFi    []row
	Faults  []faultView
	Outbox  []row
	Host    []row
	Agent   []row
}

// jobStates are the words of ctl queue for job states.
var jobStates = map[printq.State]string{
	printq.Pending: "pending", printq.Held: "held", printq.Processing: "processing",
	printq.Stopped: "stopped", printq.Canceled: "canceled", printq.Aborted: "aborted", printq.Completed: "completed",
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	b := h.base(r, "/status")
	b.Title = b.T("Technical details")
	st := h.cfg.Status()
	d := statusData{base: b, Flash: b.flash(r.URL.Query())}
	yes := func(v bool) string {
		if v {
			return b.T("yes")
		}
		return b.T("no")
	}
	if q := h.cfg.Queue; q != nil {
		ps := q.Printer()
		d.Devices = append(d.Devices, b.printerDevice(ps, st.NoPrinter))
		state := map[int]string{3: "idle", 4: "printing", 5: "stopped"}[ps.State]
		if state == "" {
			state = "unknown"
		}
		reasons := strings.Join(ps.Reasons, ", ")
		if reasons == "" {
			reasons = b.T("none")
		}
		last := b.T("never")
		if !ps.Updated.IsZero() {
			last = b.clock(ps.Updated)
		}
		d.Printer = []row{
			{b.T("Answers"), yes(ps.Reachable)},
			{b.T("State"), b.T(state)},
			{b.T("State reasons"), reasons},
			{b.T("Last answer"), last},
		}
		for _, m := range ps.Markers {
			d.Markers = append(d.Markers, b.markerView(m))
		}
		var held, waiting, done int
		for _, j := range q.Jobs() {
			switch {
			case j.State == printq.Held:
				held++
			case j.State.Terminal():
				done++
				continue
			default:
				waiting++
			}
			src := string(j.Source)
			if src == "" {
				src = "-"
			}
			reasons := strings.Join(j.Reasons, ", ")
			d.Queue = append(d.Queue, queueJob{ID: j.ID, State: b.T(jobStates[j.State]), Created: b.clock(j.Created),
				Source: src, Size: b.size(j.Size), Reasons: reasons, Cancel: !j.State.Terminal()})
		}
		d.Counts = b.T("%d held, %d on their way to the printer, %d finished kept", held, waiting, done)
	}
	if in := h.cfg.Inbox; in != nil {
		d.Scans = []row{
			{b.T("Scans waiting"), fmt.Sprint(len(in.List()))},
			{b.T("Kept for"), b.T("%d minutes", int(in.Retention()/time.Minute))},
			{b.T("Deleted once downloaded"), yes(in.DeleteAfterDownload())},
		}
	}
	d.Devices = append(d.Devices, b.scannerDevice(st.Scanner, st.Faults))
	if s := st.Scanner; s != nil {
		d.Scanner = []row{{b.T("State"), string(s.State)}, {b.T("Paper in the feeder"), yes(s.ADFLoaded)}}
	}
	if wf := st.WiFi; wf != nil {
		d.Devices = append(d.Devices, b.wifiDevice(wf, st.Faults))
		d.WiFi = []row{{b.T("Up"), yes(wf.Up)}, {b.T("Network name"), wf.SSID},
			{b.T("Channel"), fmt.Sprint(wf.Channel)}, {b.T("Devices connected"), fmt.Sprint(wf.Clients)}}
	}
	for _, f := range st.Faults {
		d.Faults = append(d.Faults, faultView{Device: string(f.Device), Code: f.Code, Severity: string(f.Severity), Since: b.clock(f.Since)})
	}
	if o := st.Outbox; o != nil {
		d.Outbox = []row{{b.T("Events waiting for central"), fmt.Sprint(o.Depth)},
			{b.T("Last event"), fmt.Sprint(o.LastSeq)}, {b.T("Acknowledged up to"), fmt.Sprint(o.LastAck)}}
	}
	if hs := st.Host; hs != nil {
		temp := "-"
		if hs.CPUTempC != nil {
			temp = b.T("%.1f °C", *hs.CPUTempC)
		}
		throttled := strings.Join(hs.Throttled, ", ")
		if throttled == "" {
			throttled = b.T("none")
		}
		d.Host = []row{
			{b.T("Processor temperature"), temp},
			{b.T("Throttling"), throttled},
			{b.T("Disk"), b.T("%s free of %s", b.size(hs.DiskFreeBytes), b.size(hs.DiskTotalBytes))},
			{b.T("Memory"), b.T("%s free of %s", b.size(hs.MemAvailableBytes), b.size(hs.MemTotalBytes))},
			{b.T("Load"), b.T("%.2f", hs.Load1)},
			{b.T("Up for"), b.duration(time.Duration(hs.UptimeS) * time.Second)},
			{b.T("Clock synchronised"), yes(hs.ClockSynced)},
		}
	}
	if st.Version != "" {
		d.Agent = append(d.Agent, row{b.T("Version"), st.Version})
	}
	if !st.Started.IsZero() {
		d.Agent = append(d.Agent, row{b.T("Running for"), b.duration(b.now.Sub(st.Started))})
	}
	d.Agent = append(d.Agent, row{b.T("Print release"), yes(st.Hold)})
	h.render(w, http.StatusOK, "status", b, d)
}

func (b *base) markerView(m printq.Marker) markerView {
	v := markerView{Name: m.Name, Kind: m.Kind, Color: m.Color, Percent: -1}
	switch {
	case m.Level >= 0:
		v.Percent = min(m.Level, 100)
		v.Level = b.T("%d %%", v.Percent)
	case m.Level == api.MarkerLevelSome:
		v.Level = b.T("some left")
	case m.Level == api.MarkerLevelUnavailable:
		v.Level = b.T("not reported")
	default:
		v.Level = b.T("unknown")
	}
	return v
}

// duration is a duration in days, hours and minutes.
func (b *base) duration(d time.Duration) string {
	d = d.Round(time.Minute)
	days, hours, mins := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case days > 0:
		return b.T("%d d %d h", days, hours)
	case hours > 0:
		return b.T("%d h %d min", hours, mins)
	}
	return b.T("%d min", mins)
}
