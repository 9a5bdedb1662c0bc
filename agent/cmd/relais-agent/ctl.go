package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/relais-fr/relais/agent/ctl"
	"github.com/relais-fr/relais/agent/locale"
	"github.com/relais-fr/relais/configs"
)

// ctl sends one command to the running agent over its control socket and
// prints the answer.
func ctlCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ctl", stderr)
	var cf configFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: relais-agent ctl [flags] status | press short|long|verylong | led | queue | release [JOB] | cancel JOB")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := configs.LoadAgent(cf.path, configs.Overrides{Sets: cf.sets})
	if err != nil {
		return err
	}
	lang := locale.FromEnv()
	resp, err := ctl.Call(context.Background(), cfg.Storage.Dir, ctl.Request{
		Command: fs.Arg(0), Args: fs.Args()[1:], Lang: lang.String(),
	})
	if err != nil {
		return err
	}
	if *asJSON {
		var v any
		if err := json.Unmarshal(resp.Data, &v); err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	fmt.Fprintln(stdout, resp.Text)
	return nil
}
