package webapi

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/relais-fr/relais/central/api"
	"github.com/relais-fr/relais/central/store"
)

// minTime is the earliest time a query may name: the contract's first year.
var minTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// checkParams refuses a query with a parameter not in allowed, or one that
// cannot be parsed.
func checkParams(r *http.Request, allowed []string) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errorf(http.StatusBadRequest, "malformed query string")
	}
	for k := range q {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return errorf(http.StatusBadRequest, "unknown parameter %q: this route takes none", clip(k))
			}
			return errorf(http.StatusBadRequest, "unknown parameter %q: want %s", clip(k), strings.Join(allowed, ", "))
		}
	}
	return nil
}

// single returns the one value of parameter k; an error when it is
// repeated or empty.
func single(q url.Values, k string) (string, bool, error) {
	vs, ok := q[k]
	switch {
	case !ok:
		return "", false, nil
	case len(vs) > 1:
		return "", false, errorf(http.StatusBadRequest, "parameter %s given %d times; want it once", k, len(vs))
	case vs[0] == "":
		return "", false, errorf(http.StatusBadRequest, "parameter %s is empty", k)
	}
	return vs[0], true, nil
}

// parseTime parses an RFC 3339 time or a YYYY-MM-DD day (midnight UTC),
// from 2020 to one day after now.
func parseTime(s string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t, err = time.Parse(time.DateOnly, s)
	}
	if err != nil {
		return time.Time{}, errors.New("want an RFC 3339 time such as 2026-03-01T08:00:00Z or a day such as 2026-03-01")
	}
	if t.Before(minTime) || t.After(now.Add(24*time.Hour)) {
		return time.Time{}, fmt.Errorf("want a time from %s to tomorrow", minTime.Format(time.DateOnly))
	}
	return t.UTC(), nil
}

// parseDay parses a YYYY-MM-DD day.
func parseDay(k, s string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, errorf(http.StatusBadRequest, "%s=%q: want a day such as 2026-03-01", k, clip(s))
	}
	return t, nil
}

// parseUsage validates the usage query: from and to (days, inclusive; to
// defaults to today in UTC, from to 29 days before to), period (day, week
// or month; day by default), and up to MaxSites distinct site parameters.
// The range runs from 2020 to a year after today (so that a period can
// be named whole, such as the current month), at most MaxDayRangeDays days for
// daily rows and MaxRangeDays for weekly and monthly ones.
func parseUsage(r *http.Request, now time.Time) (store.UsageQuery, error) {
	var uq store.UsageQuery
	if err := checkParams(r, []string{"from", "to", "period", "site"}); err != nil {
		return uq, err
	}
	q := r.URL.Query()
	today := now.UTC().Truncate(24 * time.Hour)
	uq.Period = store.Day
	if v, ok, err := single(q, "period"); err != nil {
		return uq, err
	} else if ok {
		switch p := store.Period(v); p {
		case store.Day, store.Week, store.Month:
			uq.Period = p
		default:
			return uq, errorf(http.StatusBadRequest, "period=%q: want day, week or month", clip(v))
		}
	}
	uq.To = today
	if v, ok, err := single(q, "to"); err != nil {
		return uq, err
	} else if ok {
		if uq.To, err = parseDay("to", v); err != nil {
			return uq, err
		}
	}
	uq.From = uq.To.AddDate(0, 0, -29)
	if v, ok, err := single(q, "from"); err != nil {
		return uq, err
	} else if ok {
		if uq.From, err = parseDay("from", v); err != nil {
			return uq, err
		}
	}
	latest := today.AddDate(0, 0, 366)
	switch {
	case uq.From.Before(minTime):
		return uq, errorf(http.StatusBadRequest, "from=%s: want %s or later", uq.From.Format(time.DateOnly), minTime.Format(time.DateOnly))
	case uq.To.After(latest):
		return uq, errorf(http.StatusBadRequest, "to=%s: want %s or earlier", uq.To.Format(time.DateOnly), latest.Format(time.DateOnly))
	case uq.To.Before(uq.From):
		return uq, errorf(http.StatusBadRequest, "to=%s is before from=%s", uq.To.Format(time.DateOnly), uq.From.Format(time.DateOnly))
	}
	days := int(uq.To.Sub(uq.From)/(24*time.Hour)) + 1
	limit := MaxRangeDays
	if uq.Period == store.Day {
		limit = MaxDayRangeDays
	}
	if days > limit {
		return uq, errorf(http.StatusBadRequest, "%d days from %s to %s: want at most %d with period=%s",
			days, uq.From.Format(time.DateOnly), uq.To.Format(time.DateOnly), limit, uq.Period)
	}
	sites := q["site"]
	if len(sites) > MaxSites {
		return uq, errorf(http.StatusBadRequest, "%d site parameters: want at most %d", len(sites), MaxSites)
	}
	for _, s := range sites {
		if !api.ValidID(s) {
			return uq, errorf(http.StatusBadRequest, "site=%q: want 1 to 63 characters among a-z, 0-9 and -", clip(s))
		}
		if !slices.Contains(uq.Sites, s) {
			uq.Sites = append(uq.Sites, s)
		}
	}
	return uq, nil
}

// clip shortens a value echoed in an error message to 64 bytes of valid
// UTF-8.
func clip(s string) string {
	if len(s) <= 64 {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ToValidUTF8(s[:64], "\uFFFD") + "…"
}

func sortBy[T any](s []T, key func(T) string) {
	slices.SortStableFunc(s, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
}
