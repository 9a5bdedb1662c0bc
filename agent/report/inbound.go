package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/relais-fr/relais/central/api"
)

// onAck handles a message on the ack topic. It runs on paho's router
// goroutine and must not block: it validates the ack and leaves it to the
// publishing loop. An ack beyond the highest seq this process published
// is refused: central cannot have committed events it never received.
func (r *Reporter) onAck(_ mqtt.Client, m mqtt.Message) {
	a, err := api.DecodeAck(m.Payload())
	if err != nil {
		r.countLog(&r.rejectedAcks, "refused an ack payload", "bytes", len(m.Payload()), "err", err)
		return
	}
	if p := r.published.Load(); a.Upto > p {
		r.countLog(&r.rejectedAcks, "refused an ack beyond the events published", "upto", a.Upto, "published", p)
		return
	}
	for {
		cur := r.ackTarget.Load()
		if a.Upto <= cur {
			return // old news: acks are cumulative
		}
		if r.ackTarget.CompareAndSwap(cur, a.Upto) {
			break
		}
	}
	r.Kick()
}

// onCommand handles a message on cmd/{name}, on paho's router goroutine:
// a valid command is queued for runCommands, anything else is answered
// with an error at once.
func (r *Reporter) onCommand(_ mqtt.Client, m mqtt.Message) {
	topic := m.Topic()
	name := topic[strings.LastIndexByte(topic, '/')+1:]
	cmd, err := api.DecodeCommand(name, m.Payload())
	if err != nil {
		r.countLog(&r.rejectedCmds, "refused a command", "bytes", len(m.Payload()), "err", err)
		r.reply(api.CommandResult{Req: reqOf(m.Payload()), Error: describe(err)})
		return
	}
	select {
	case r.cmds <- cmd:
	default:
		r.countLog(&r.rejectedCmds, "refused a command: too many waiting", "command", cmd.Name)
		r.reply(api.CommandResult{Req: cmd.Req, Error: "busy: too many commands waiting"})
	}
}

// reply queues a result for runReplies without blocking; a result that
// does not fit is dropped and logged.
func (r *Reporter) reply(res api.CommandResult) {
	select {
	case r.replies <- res:
	default:
		r.log.Warn("dropped a command result: too many waiting", "req", res.Req)
	}
}

// reqOf returns the request id of a command payload that could not be
// decoded, if it has a valid one, else "unknown".
func reqOf(payload []byte) string {
	var p struct {
		Req string `json:"req"`
	}
	if len(payload) <= api.MaxPayloadBytes && json.Unmarshal(payload, &p) == nil {
		if (api.CommandResult{Req: p.Req, Error: "x"}).Validate() == nil {
			return p.Req
		}
	}
	return "unknown"
}

// describe turns a decoding error into a short message for cmd-result.
func describe(err error) string {
	var ve *api.ValidationError
	switch {
	case errors.Is(err, api.ErrTooLarge):
		return fmt.Sprintf("payload too large (limit %d bytes)", api.MaxPayloadBytes)
	case errors.Is(err, api.ErrMalformed):
		return "malformed JSON"
	case errors.As(err, &ve):
		// The reason quotes an unknown field or command name as received:
		// leave it out, so that nothing received is echoed back.
		reason, _, _ := strings.Cut(ve.Reason, `"`)
		reason = strings.TrimSpace(reason)
		if ve.Field == "" {
			return "invalid command: " + reason
		}
		return "invalid command: " + ve.Field + ": " + reason
	}
	return "invalid command"
}

// runCommands runs queued commands one at a time.
func (r *Reporter) runCommands(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case cmd := <-r.cmds:
			res, ok := r.execute(ctx, cmd)
			if ok {
				r.reply(res)
			}
		}
	}
}

// execute runs one command within CommandTimeout. ok is false when ctx
// ended first. After a timeout it still waits for the handler to return
// (or ctx), so that handlers never run concurrently.
func (r *Reporter) execute(ctx context.Context, cmd api.Command) (res api.CommandResult, ok bool) {
	res.Req = cmd.Req
	if cmd.Name == api.CommandRefresh {
		r.refresh.Store(true)
		if r.cfg.Source != nil {
			r.snapshot()
		}
		r.Kick()
		res.OK = true
		return res, true
	}
	if r.cfg.Commands == nil {
		res.Error = "not supported by this agent"
		return res, true
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic: %v", p)
			}
		}()
		done <- r.cfg.Commands.Run(cctx, cmd)
	}()
	t := r.clock.NewTimer(r.cfg.CommandTimeout)
	defer t.Stop()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		return res, false
	case <-t.C():
		cancel()
		r.log.Warn("command timed out", "command", cmd.Name, "req", cmd.Req, "after", r.cfg.CommandTimeout)
		r.reply(api.CommandResult{Req: cmd.Req, Error: fmt.Sprintf("timed out after %v", r.cfg.CommandTimeout)})
		select {
		case <-done:
		case <-ctx.Done():
		}
		return res, false
	}
	if err == nil {
		res.OK = true
		return res, true
	}
	r.log.Warn("command failed", "command", cmd.Name, "req", cmd.Req, "err", err)
	res.Error = "failed; see the agent's log"
	var pe PublicError
	if errors.As(err, &pe) {
		if msg := clip(string(pe), 256); (api.CommandResult{Req: res.Req, Error: msg}).Validate() == nil {
			res.Error = msg
		}
	}
	return res, true
}

// clip shortens s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// runReplies publishes command results on cmd-result. A result for a
// command answered while offline is dropped (and logged): central asks
// again if it still needs to.
func (r *Reporter) runReplies(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case res := <-r.replies:
			if res.OK {
				res.Error = ""
			} else if res.Error == "" {
				res.Error = "failed"
			}
			b, err := api.Encode(res)
			if err != nil {
				r.log.Error("command result cannot be encoded", "req", res.Req, "err", err)
				continue
			}
			c := r.client()
			if c == nil {
				r.log.Warn("dropped a command result: offline", "req", res.Req)
				continue
			}
			if err := wait(ctx, c.Publish(r.topic.result, 1, false, b), waitLimit); err != nil {
				r.log.Warn("publishing a command result", "req", res.Req, "err", err)
			}
		}
	}
}

// runMetrics takes a snapshot every MetricsInterval, connected or not.
func (r *Reporter) runMetrics(ctx context.Context) {
	if r.cfg.Source == nil {
		return
	}
	for {
		t := r.clock.NewTimer(r.cfg.MetricsInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
			r.snapshot()
		}
	}
}

// snapshot stores a metrics snapshot in the outbox and wakes the loop.
func (r *Reporter) snapshot() {
	m := r.cfg.Source.Metrics()
	m.Time = r.stamp()
	b, err := api.Encode(m)
	if err != nil {
		r.log.Error("metrics snapshot refused by the contract", "err", err)
		return
	}
	if err := r.ob.AddMetrics(b); err != nil {
		r.log.Warn("storing a metrics snapshot", "err", err)
		return
	}
	r.newMetrics.Store(true)
	r.Kick()
}
