package deb

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	// describeSuffix is what git describe adds after a tag: commits since it and the commit.
	describeSuffix = regexp.MustCompile(`^(.+)-([0-9]+)-g([0-9a-f]{4,64})$`)
	// bareCommit is git describe --always without any tag: the abbreviated commit.
	bareCommit = regexp.MustCompile(`^[0-9a-f]{4,64}$`)
	tagVersion = regexp.MustCompile(`^[0-9][0-9A-Za-z.]*(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.]+)?$`)
	// debianNative is a Debian version with no epoch and no revision, as a native package has.
	debianNative = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)
)

// Version maps the output of `git describe --tags --always --dirty` to a Debian version that
// sorts the way the commits follow each other:
//
//	v1.2.0                     1.2.0
//	v1.3.0-rc.1                1.3.0~rc.1        (before 1.3.0)
//	v1.2.0-4-g57e9cda          1.2.0+git4.57e9cda (after 1.2.0)
//	57e9cda, 33 commits        0~git33.57e9cda   (no tag yet)
//	...-dirty                  ...+dirty or ....dirty
//
// commits is the number of commits of HEAD (git rev-list --count HEAD), used only when no tag
// exists. The versions have no Debian revision: the packages are native, built from this
// repository.
func Version(describe string, commits int) (string, error) {
	d := strings.TrimSpace(describe)
	dirty := strings.HasSuffix(d, "-dirty")
	d = strings.TrimSuffix(d, "-dirty")
	var v string
	switch m := describeSuffix.FindStringSubmatch(d); {
	case bareCommit.MatchString(d):
		if commits <= 0 {
			return "", fmt.Errorf("git describe %q names no tag: the number of commits is needed", describe)
		}
		v = fmt.Sprintf("0~git%d.%s", commits, d)
	case m != nil:
		tag, err := fromTag(m[1])
		if err != nil {
			return "", fmt.Errorf("git describe %q: %w", describe, err)
		}
		v = fmt.Sprintf("%s+git%s.%s", tag, m[2], m[3])
	default:
		tag, err := fromTag(d)
		if err != nil {
			return "", fmt.Errorf("git describe %q: %w", describe, err)
		}
		v = tag
	}
	if dirty {
		if strings.Contains(v, "+") {
			v += ".dirty"
		} else {
			v += "+dirty"
		}
	}
	if err := CheckVersion(v); err != nil {
		return "", fmt.Errorf("git describe %q: %w", describe, err)
	}
	return v, nil
}

// fromTag maps a release tag, v1.2.3 or v1.3.0-rc.1, to a Debian version.
func fromTag(tag string) (string, error) {
	t := strings.TrimPrefix(tag, "v")
	if !tagVersion.MatchString(t) {
		return "", fmt.Errorf("tag %q: want v followed by a version such as 1.2.3 or 1.3.0-rc.1", tag)
	}
	// A semantic-version pre-release sorts before its release: the hyphen becomes a tilde.
	return strings.ReplaceAll(t, "-", "~"), nil
}

// CheckVersion reports whether v is a Debian version of a native package: no epoch, no revision.
func CheckVersion(v string) error {
	if len(v) > 128 || !debianNative.MatchString(v) {
		return fmt.Errorf("version %q: want a digit then letters, digits and . + ~ (at most 128)", v)
	}
	return nil
}
