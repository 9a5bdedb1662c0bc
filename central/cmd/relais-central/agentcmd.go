package main

import "io"

// agentCommand is `relais-central agent add --site S --agent A`.
func agentCommand(args []string, stdout, stderr io.Writer) error {
	return notYet("agent")(args, stdout, stderr)
}
