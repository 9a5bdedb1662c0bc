package deb

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// relaisCopyright is the Relais part of every package's copyright file.
const relaisCopyright = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: relais
Source: https://github.com/relais-fr/relais
Comment: The programs are statically linked Go programs: the Files paragraphs
 after the first are the Go modules built into them, named as in a vendor/
 directory, with the versions "go version -m" shows for each program.

Files: *
Copyright: the Relais contributors
License: see-upstream
 The Relais repository does not name a license yet: see its README.
`

// licenseFiles are the names under which Go modules ship their license, in order of preference.
var licenseFiles = []string{"LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "COPYING", "LICENSE-MIT"}

// module is one Go module built into a program, with its license.
type module struct {
	path, version string
	license       string // short name, as in copyright-format 1.0
	text          string // the license file
}

// copyright is the machine-readable copyright file of the package: Relais, then every Go module
// built into its programs with its license, read from the module cache. A module whose license
// is missing or not recognised stops the build: a package must not ship code it cannot license.
func (b *Build) copyright() ([]byte, error) {
	mods := map[string]module{}
	var problems []error
	for _, name := range slices.Sorted(maps.Keys(Programs[b.Package])) {
		info, err := buildinfo.ReadFile(b.Programs[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, dep := range info.Deps {
			if dep.Replace != nil {
				dep = dep.Replace
			}
			key := dep.Path + "@" + dep.Version
			if _, seen := mods[key]; seen {
				continue
			}
			m, err := b.moduleLicense(dep.Path, dep.Version)
			if err != nil {
				problems = append(problems, err)
				continue
			}
			mods[key] = m
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	var out bytes.Buffer
	out.WriteString(relaisCopyright)
	texts := map[string]string{} // license → its file in /usr/share/common-licenses
	for _, key := range slices.Sorted(maps.Keys(mods)) {
		m := mods[key]
		fmt.Fprintf(&out, "\nFiles: vendor/%s/*\nCopyright: %s\nLicense: %s\n", m.path, copyrightLines(m), m.license)
		switch m.license {
		case "Apache-2.0", "MPL-2.0":
			texts[m.license] = m.license
		case "FTL or GPL-2+":
			texts["GPL-2+"] = "GPL-2"
			out.WriteString(indent(m.text))
		default:
			// Short licenses carry the holders' names: each module's text, as it is.
			out.WriteString(indent(m.text))
		}
	}
	for _, l := range slices.Sorted(maps.Keys(texts)) {
		fmt.Fprintf(&out, "\nLicense: %s\n On Debian systems, the complete text of the license is in\n /usr/share/common-licenses/%s.\n", l, texts[l])
	}
	return out.Bytes(), nil
}

// moduleLicense finds and recognises the license of a module in the module cache.
func (b *Build) moduleLicense(path, version string) (module, error) {
	dir := filepath.Join(b.ModCache, escapeModulePath(path)+"@"+version)
	for _, name := range licenseFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		text := utf8Text(data)
		l := classify(text)
		if l == "" {
			return module{}, fmt.Errorf("module %s %s: license %s not recognised", path, version, name)
		}
		if l == "FTL or GPL-2+" {
			// The FreeType License's text is in the module, beside the notice that names it.
			ftl, err := os.ReadFile(filepath.Join(dir, "licenses", "ftl.txt"))
			if err != nil {
				return module{}, fmt.Errorf("module %s %s: the FreeType License's text: %w", path, version, err)
			}
			text += "\n" + utf8Text(ftl)
		}
		return module{path: path, version: version, license: l, text: text}, nil
	}
	return module{}, fmt.Errorf("module %s %s: no license file in %s (is the module downloaded? go mod download %s)", path, version, dir, path)
}

// classify names the license of a license file, or returns "".
func classify(text string) string {
	t := strings.Join(strings.Fields(text), " ")
	switch {
	case strings.Contains(t, "The FreeType License") && strings.Contains(t, "(GPL), version 2 or later"):
		return "FTL or GPL-2+"
	case strings.Contains(t, "Eclipse Public License - v 2.0") && strings.Contains(t, "Eclipse Distribution License v1.0"):
		return "EPL-2.0 or EDL-1.0"
	case strings.Contains(t, "Apache License") && strings.Contains(t, "Version 2.0"):
		return "Apache-2.0"
	case strings.Contains(t, "Mozilla Public License") && strings.Contains(t, "2.0"):
		return "MPL-2.0"
	case strings.Contains(t, "Permission is hereby granted, free of charge"):
		return "Expat"
	case strings.Contains(t, "Permission to use, copy, modify, and/or distribute this software for any purpose"),
		strings.Contains(t, "Permission to use, copy, modify, and distribute this software for any purpose"):
		return "ISC"
	case strings.Contains(t, "Redistribution and use in source and binary forms"):
		if strings.Contains(t, "Neither the name") || strings.Contains(t, "names of its contributors") ||
			strings.Contains(t, "name of the copyright holder") {
			return "BSD-3-clause"
		}
		return "BSD-2-clause"
	}
	return ""
}

// copyrightLines are the copyright notices of a license text, or the module's authors.
func copyrightLines(m module) string {
	var lines []string
	for line := range strings.Lines(m.text) {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(strings.ToLower(l), "copyright") && len(l) > len("copyright ") &&
			strings.ContainsFunc(l, unicode.IsDigit) && !slices.Contains(lines, l) {
			lines = append(lines, strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(l, "Copyright"), "COPYRIGHT")))
		}
	}
	if len(lines) == 0 {
		return "the authors of " + m.path
	}
	return strings.Join(lines, "\n ")
}

// indent writes a license text as the continuation lines of a License field.
func indent(text string) string {
	var b strings.Builder
	for line := range strings.Lines(strings.TrimSpace(text) + "\n") {
		line = strings.TrimRight(line, " \t\r\n")
		if line == "" {
			b.WriteString(" .\n")
			continue
		}
		b.WriteString(" " + line + "\n")
	}
	return b.String()
}

// escapeModulePath is the module cache's form of a module path: each upper-case letter becomes
// "!" and its lower case.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// utf8Text is data as UTF-8: the copyright file must be UTF-8, and a few license files are
// still in ISO-8859-1, whose bytes are the first 256 code points.
func utf8Text(data []byte) string {
	if utf8.Valid(data) {
		return string(data)
	}
	r := make([]rune, len(data))
	for i, b := range data {
		r[i] = rune(b)
	}
	return string(r)
}
