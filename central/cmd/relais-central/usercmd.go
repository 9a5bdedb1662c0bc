package main

import "io"

// userCommand is `relais-central user add|passwd|list`.
func userCommand(args []string, stdout, stderr io.Writer) error {
	return notYet("user")(args, stdout, stderr)
}
