// Package ippserver is the agent's IPP Everywhere printer: the print queue
// that public PCs and phones see at ipp://HOST:PORT/ipp/print. It speaks
// IPP/1.1 and IPP/2.0 (RFC 8010, RFC 8011, PWG 5100.12, PWG 5100.14 and the
// cheap parts of PWG 5100.7), mirrors the capabilities of the site's real
// printer (never advertising what that printer cannot print), validates every
// request completely before a job exists, bounds what it reads, and hands
// each accepted job, document streamed, to the durable queue (printq), which
// answers only once the job is on disk. Job, user and document names stay on
// the site: they are shown to their owner only.
package ippserver
