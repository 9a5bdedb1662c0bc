package ippserver

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/OpenPrinting/goipp"

	"github.com/relais-fr/relais/agent/printq"
)

// FuzzServeIPP sends arbitrary bytes as an IPP request: the server never
// panics, always answers a valid IPP response (or an HTTP error when not
// even the 8-byte IPP header came), and no job comes of a request that was
// not a successful Print-Job or Create-Job.
//
// Its seeds are testdata/fuzz/FuzzServeIPP: valid requests of every
// operation (see fuzzSeeds).
func FuzzServeIPP(f *testing.F) {
	e := newEnv(f, printq.Config{KeepCompleted: 10}, Config{JobsPerClientPerMinute: 10000, MaxJobBytes: 1 << 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		before := lastID(e.q.Jobs())
		r := httptest.NewRequest(http.MethodPost, "http://relais.local:631"+Path, bytes.NewReader(data))
		r.Header.Set("Content-Type", goipp.ContentType)
		r.RemoteAddr = "192.0.2.7:40000"
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, r)
		after := lastID(e.q.Jobs())
		if rec.Code != http.StatusOK {
			if rec.Code != http.StatusBadRequest || len(data) >= 8 {
				t.Fatalf("HTTP %d for %d bytes", rec.Code, len(data))
			}
			if after != before {
				t.Fatal("a job came of a request that was not IPP")
			}
			return
		}
		var resp goipp.Message
		if err := resp.DecodeBytes(rec.Body.Bytes()); err != nil {
			t.Fatalf("the response does not decode: %v", err)
		}
		req := &goipp.Message{
			Version:   goipp.Version(binary.BigEndian.Uint16(data[0:2])),
			RequestID: binary.BigEndian.Uint32(data[4:8]),
		}
		if err := checkResponse(req, &resp); err != nil {
			t.Fatal(err)
		}
		op, st := goipp.Op(binary.BigEndian.Uint16(data[2:4])), goipp.Status(resp.Code)
		created := st <= goipp.StatusOkConflicting && (op == goipp.OpPrintJob || op == goipp.OpCreateJob)
		switch {
		case created && after != before+1:
			t.Fatalf("%s answered %s but made %d jobs", op, st, after-before)
		case !created && after != before:
			t.Fatalf("%s answered %s and made a job", op, st)
		}
	})
}

func lastID(jobs []printq.Job) int {
	if len(jobs) == 0 {
		return 0
	}
	return jobs[len(jobs)-1].ID
}

// fuzzSeed is a request of the seed corpus, with its file name.
type fuzzSeed struct {
	name string
	data []byte
}

// fuzzSeeds are valid requests of every operation, and some invalid ones.
// testdata/fuzz/FuzzServeIPP holds them in Go's corpus format; see
// TestFuzzSeedCorpus.
func fuzzSeeds(t testing.TB) []fuzzSeed {
	var id uint32
	req := func(op goipp.Op, attrs ...goipp.Attribute) *goipp.Message {
		id++
		m := goipp.NewRequest(goipp.MakeVersion(2, 0), op, id)
		m.Operation.Add(goipp.MakeAttr("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
		m.Operation.Add(goipp.MakeAttr("attributes-natural-language", goipp.TagLanguage, goipp.String("fr-fr")))
		m.Operation.Add(goipp.MakeAttr("printer-uri", goipp.TagURI, goipp.String("ipp://relais.local:631"+Path)))
		m.Operation.Add(nameAttr("requesting-user-name", "aidant"))
		m.Operation = append(m.Operation, attrs...)
		return m
	}
	enc := func(m *goipp.Message, doc []byte) []byte {
		b, err := m.EncodeBytes()
		if err != nil {
			t.Fatal(err)
		}
		return append(b, doc...)
	}
	small := pwgRaster(72, 72, 72, "sgray_8", "custom_1x1in", 1)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(small)
	zw.Close()
	mediaCol := goipp.MakeAttr("media-col", goipp.TagBeginCollection, goipp.Collection{
		goipp.MakeAttr("media-size", goipp.TagBeginCollection, goipp.Collection{intAttr("x-dimension", 21000), intAttr("y-dimension", 29700)}),
		kw("media-source", "auto"), intAttr("media-top-margin", 423)})
	job := []goipp.Attribute{
		intAttr("copies", 1), kw("sides", "one-sided"), mediaCol, kw("print-color-mode", "monochrome"),
		goipp.MakeAttr("page-ranges", goipp.TagRange, goipp.Range{Lower: 1, Upper: 1}),
		goipp.MakeAttr("print-quality", goipp.TagEnum, goipp.Integer(4)), kw("job-hold-until", "indefinite"),
	}
	v11 := req(goipp.OpGetPrinterAttributes)
	v11.Version = goipp.MakeVersion(1, 1)
	seeds := []fuzzSeed{
		{"get-printer-attributes", enc(req(goipp.OpGetPrinterAttributes), nil)},
		{"get-printer-attributes-1.1", enc(v11, nil)},
		{"get-printer-attributes-requested", enc(req(goipp.OpGetPrinterAttributes,
			kw("requested-attributes", "job-template", "media-col-database", "printer-state"), mimeAttr("image/pwg-raster")), nil)},
		{"print-job-pwg", enc(withJob(req(goipp.OpPrintJob, nameAttr("job-name", "Relevé"), mimeAttr("image/pwg-raster")), job...), small)},
		{"print-job-octet-stream", enc(req(goipp.OpPrintJob, mimeAttr("application/octet-stream")), pdf)},
		{"print-job-gzip", enc(req(goipp.OpPrintJob, kw("compression", "gzip"), boolAttr("ipp-attribute-fidelity", true)), gz.Bytes())},
		{"validate-job", enc(withJob(req(goipp.OpValidateJob, mimeAttr("application/pdf")), job...), nil)},
		{"create-job", enc(withJob(req(goipp.OpCreateJob, nameAttr("job-name", "Scan")), intAttr("copies", 2)), nil)},
		{"send-document", enc(req(goipp.OpSendDocument, intAttr("job-id", 1), boolAttr("last-document", true), mimeAttr("image/jpeg")),
			jpegImage(t, 8, 8, true))},
		{"close-job", enc(req(goipp.OpCloseJob, intAttr("job-id", 1)), nil)},
		{"cancel-job", enc(req(goipp.OpCancelJob, intAttr("job-id", 1)), nil)},
		{"cancel-my-jobs", enc(req(goipp.OpCancelMyJobs, goipp.MakeAttr("job-ids", goipp.TagInteger, goipp.Integer(1), goipp.Integer(2))), nil)},
		{"get-job-attributes", enc(req(goipp.OpGetJobAttributes, intAttr("job-id", 1), kw("requested-attributes", "all")), nil)},
		{"get-jobs", enc(req(goipp.OpGetJobs, kw("which-jobs", "all"), boolAttr("my-jobs", true), intAttr("limit", 5),
			kw("requested-attributes", "job-id", "job-state", "job-name")), nil)},
		{"identify-printer", enc(req(goipp.OpIdentifyPrinter, kw("identify-actions", "flash", "display"),
			goipp.MakeAttr("message", goipp.TagText, goipp.String("Bonjour"))), nil)},
		{"pause-printer", enc(req(goipp.OpPausePrinter), nil)},
	}
	truncated := seeds[3].data
	seeds = append(seeds, fuzzSeed{"print-job-truncated", truncated[:120]},
		fuzzSeed{"version-48.48", []byte("00000000")})
	return seeds
}

// The committed seed corpus is what fuzzSeeds makes. Set
// RELAIS_UPDATE_FUZZ_SEEDS=1 to rewrite it after changing fuzzSeeds.
func TestFuzzSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzServeIPP")
	update := os.Getenv("RELAIS_UPDATE_FUZZ_SEEDS") == "1"
	if update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for _, s := range fuzzSeeds(t) {
		path := filepath.Join(dir, s.name)
		want = append(want, s.name)
		content := []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.data))
		if update {
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("%s is missing or stale (err %v): run RELAIS_UPDATE_FUZZ_SEEDS=1 go test -run TestFuzzSeedCorpus", path, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		if !slices.Contains(want, ent.Name()) {
			t.Errorf("%s is not a seed of fuzzSeeds (a crasher found by go test -fuzz? keep it as a seed there)", ent.Name())
		}
	}
}
