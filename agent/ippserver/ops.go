package ippserver

import (
	"github.com/OpenPrinting/goipp"
)

// operation is a supported IPP operation: its handler and the operation
// attributes it understands (others are returned as unsupported).
type operation struct {
	run   func(*Server, *call) *response
	job   bool // targets a job: job-uri may replace printer-uri
	names map[string]bool
}

func (o operation) accepts(name string) bool {
	return common[name] || o.names[name]
}

// common are the operation attributes of every request.
var common = map[string]bool{
	"attributes-charset": true, "attributes-natural-language": true, "printer-uri": true,
	"requesting-user-name": true, "requesting-user-uri": true,
}

func op(run func(*Server, *call) *response, job bool, names ...string) operation {
	o := operation{run: run, job: job, names: map[string]bool{}}
	for _, n := range names {
		o.names[n] = true
	}
	return o
}

// creation are the operation attributes of Print-Job and Validate-Job.
var creation = []string{
	"job-name", "ipp-attribute-fidelity", "job-mandatory-attributes", "document-name",
	"document-format", "compression", "document-natural-language", "document-format-details",
	"job-k-octets", "job-impressions", "job-media-sheets",
}

// operations are the supported operations, as operations-supported lists
// them.
var operations = map[goipp.Op]operation{
	goipp.OpPrintJob:    op((*Server).printJob, false, creation...),
	goipp.OpValidateJob: op((*Server).validateJob, false, creation...),
	goipp.OpCreateJob: op((*Server).createJob, false, "job-name", "ipp-attribute-fidelity", "job-mandatory-attributes",
		"document-name", "document-format", "compression", "document-natural-language", "document-format-details",
		"job-k-octets", "job-impressions", "job-media-sheets"),
	goipp.OpSendDocument: op((*Server).sendDocument, true, "job-id", "job-uri", "last-document", "document-name",
		"document-format", "compression", "document-natural-language", "document-format-details"),
	goipp.OpCloseJob:             op((*Server).closeJob, true, "job-id", "job-uri"),
	goipp.OpCancelJob:            op((*Server).cancelJob, true, "job-id", "job-uri", "message"),
	goipp.OpCancelMyJobs:         op((*Server).cancelMyJobs, false, "job-ids", "message"),
	goipp.OpGetJobAttributes:     op((*Server).getJobAttributes, true, "job-id", "job-uri", "requested-attributes"),
	goipp.OpGetJobs:              op((*Server).getJobs, false, "which-jobs", "my-jobs", "limit", "first-index", "job-ids", "requested-attributes"),
	goipp.OpGetPrinterAttributes: op((*Server).getPrinterAttributes, false, "requested-attributes", "document-format"),
	goipp.OpIdentifyPrinter:      op((*Server).identifyPrinter, false, "identify-actions", "message"),
}

// operationsSupported is operations-supported, in the order of the codes.
var operationsSupported = []goipp.Op{
	goipp.OpPrintJob, goipp.OpValidateJob, goipp.OpCreateJob, goipp.OpSendDocument,
	goipp.OpCancelJob, goipp.OpGetJobAttributes, goipp.OpGetJobs, goipp.OpGetPrinterAttributes,
	goipp.OpCancelMyJobs, goipp.OpCloseJob, goipp.OpIdentifyPrinter,
}
