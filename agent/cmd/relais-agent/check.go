package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/relais-fr/relais/agent/locale"
	"github.com/relais-fr/relais/agent/probe"
	"github.com/relais-fr/relais/configs"
)

// check prints a report of the configuration and of every device it names,
// and fails when the configuration is invalid or a device does not answer.
func check(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	var cf configFlags
	cf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	p := locale.Printer(locale.FromEnv())
	cfg, err := configs.LoadAgent(cf.path, configs.Overrides{Sets: cf.sets})
	if err != nil {
		fmt.Fprintln(stdout, p.Sprintf("Configuration %s", cf.path))
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stdout, "  "+p.Sprintf("FAIL")+"  "+line)
		}
		return errSilent
	}
	fmt.Fprintln(stdout, p.Sprintf("Configuration %s", cf.path))
	fmt.Fprintln(stdout, "  "+p.Sprintf("OK")+"  "+p.Sprintf("site %s, agent %s (%s)", cfg.Site.ID, cfg.Site.Agent, cfg.Site.Name))
	for _, s := range cfg.Settings() {
		fmt.Fprintf(stdout, "        %-30s %s\n", s.Key, s.Value)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, p.Sprintf("Devices"))
	failed := 0
	for _, r := range probe.All(context.Background(), p, cfg) {
		word := map[probe.Outcome]string{probe.OK: p.Sprintf("OK"), probe.Fail: p.Sprintf("FAIL"), probe.Skipped: p.Sprintf("SKIP")}[r.Outcome]
		if r.Outcome == probe.Fail {
			failed++
		}
		target := r.Target
		if target != "" {
			target += ": "
		}
		fmt.Fprintf(stdout, "  %-6s %-18s %s%s\n", word, p.Sprintf(r.Device), target, r.Detail)
	}
	fmt.Fprintln(stdout)
	if failed > 0 {
		fmt.Fprintln(stdout, p.Sprintf("%d problem(s) found.", failed))
		return errSilent
	}
	fmt.Fprintln(stdout, p.Sprintf("Everything answers."))
	return nil
}
