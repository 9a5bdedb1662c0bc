package scanner

import (
	"fmt"
	"io"
	"os"

	"github.com/relais-fr/relais/agent/scan"
)

// builtinCapabilities is the simulator's own device: a glass and a duplex
// feeder, A4/Letter, colour and grey, JPEG and PDF, 75 to 600 dpi.
const builtinCapabilities = `<?xml version="1.0" encoding="UTF-8"?>
<scan:ScannerCapabilities xmlns:scan="http://schemas.hp.com/imaging/escl/2011/05/03" xmlns:pwg="http://www.pwg.org/schemas/2010/12/sm">
  <pwg:Version>2.6</pwg:Version>
  <pwg:MakeAndModel>Relais Sim Scanner</pwg:MakeAndModel>
  <pwg:SerialNumber>RELAIS-SIM-0001</pwg:SerialNumber>
  <scan:UUID>4f1c2d7e-5a0b-4c39-9e61-7a3f0b6c2e18</scan:UUID>
  <scan:Platen>
    <scan:PlatenInputCaps>` + inputCaps + `</scan:PlatenInputCaps>
  </scan:Platen>
  <scan:Adf>
    <scan:AdfSimplexInputCaps>` + inputCaps + `</scan:AdfSimplexInputCaps>
    <scan:AdfDuplexInputCaps>` + inputCaps + `</scan:AdfDuplexInputCaps>
    <scan:FeederCapacity>50</scan:FeederCapacity>
    <scan:AdfOptions>
      <scan:AdfOption>DetectPaperLoaded</scan:AdfOption>
      <scan:AdfOption>Duplex</scan:AdfOption>
    </scan:AdfOptions>
  </scan:Adf>
</scan:ScannerCapabilities>
`

const inputCaps = `
      <scan:MinWidth>300</scan:MinWidth>
      <scan:MaxWidth>2550</scan:MaxWidth>
      <scan:MinHeight>300</scan:MinHeight>
      <scan:MaxHeight>3508</scan:MaxHeight>
      <scan:MaxScanRegions>1</scan:MaxScanRegions>
      <scan:SettingProfiles>
        <scan:SettingProfile>
          <scan:ColorModes>
            <scan:ColorMode>RGB24</scan:ColorMode>
            <scan:ColorMode>Grayscale8</scan:ColorMode>
          </scan:ColorModes>
          <scan:DocumentFormats>
            <pwg:DocumentFormat>image/jpeg</pwg:DocumentFormat>
            <pwg:DocumentFormat>application/pdf</pwg:DocumentFormat>
            <scan:DocumentFormatExt>image/jpeg</scan:DocumentFormatExt>
            <scan:DocumentFormatExt>application/pdf</scan:DocumentFormatExt>
          </scan:DocumentFormats>
          <scan:SupportedResolutions>
            <scan:DiscreteResolutions>
              <scan:DiscreteResolution><scan:XResolution>75</scan:XResolution><scan:YResolution>75</scan:YResolution></scan:DiscreteResolution>
              <scan:DiscreteResolution><scan:XResolution>100</scan:XResolution><scan:YResolution>100</scan:YResolution></scan:DiscreteResolution>
              <scan:DiscreteResolution><scan:XResolution>150</scan:XResolution><scan:YResolution>150</scan:YResolution></scan:DiscreteResolution>
              <scan:DiscreteResolution><scan:XResolution>200</scan:XResolution><scan:YResolution>200</scan:YResolution></scan:DiscreteResolution>
              <scan:DiscreteResolution><scan:XResolution>300</scan:XResolution><scan:YResolution>300</scan:YResolution></scan:DiscreteResolution>
              <scan:DiscreteResolution><scan:XResolution>600</scan:XResolution><scan:YResolution>600</scan:YResolution></scan:DiscreteResolution>
            </scan:DiscreteResolutions>
          </scan:SupportedResolutions>
        </scan:SettingProfile>
      </scan:SettingProfiles>
      <scan:SupportedIntents>
        <scan:Intent>Document</scan:Intent>
        <scan:Intent>Photo</scan:Intent>
      </scan:SupportedIntents>
      <scan:MaxOpticalXResolution>600</scan:MaxOpticalXResolution>
      <scan:MaxOpticalYResolution>600</scan:MaxOpticalYResolution>
    `

// BuiltinCapabilities returns the built-in ScannerCapabilities document.
func BuiltinCapabilities() []byte { return []byte(builtinCapabilities) }

// LoadCapabilities reads a real device's ScannerCapabilities document, such
// as one of ../shared/testdata/devices/*-ScannerCapabilities.xml, and
// checks that it parses.
func LoadCapabilities(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, scan.MaxXMLBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > scan.MaxXMLBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, scan.MaxXMLBytes)
	}
	if _, err := scan.ParseCapabilities(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}
