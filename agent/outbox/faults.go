package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/relais-fr/relais/central/api"
)

// Raise opens the fault (device, code) and records its fault.raised event,
// with Since the event's time, in one transaction. If the fault is already
// open it does nothing, even if severity differs. It implements
// printq.Faults together with Clear.
func (o *Outbox) Raise(device api.Device, code string, severity api.Severity) error {
	if err := checkFault(device, code, severity); err != nil {
		return err
	}
	return o.write(func(ctx context.Context, tx *sql.Tx, st *state) error {
		if _, err := openFault(ctx, tx, device, code); err == nil {
			return errNoChange
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("outbox: %w", err)
		}
		now := o.stamp(st)
		f := api.Fault{Code: code, Device: device, Severity: severity, Since: now}
		if _, err := o.appendEvent(ctx, tx, st, api.Event{Time: now, Type: api.EventFaultRaised, Fault: &f}); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO faults (device, code, severity, since_ms) VALUES (?, ?, ?, ?)",
			string(device), code, string(severity), now.UnixMilli())
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		return nil
	})
}

// Clear closes the open fault (device, code) and records its fault.cleared
// event, with the fault's severity and original Since, in one transaction.
// If the fault is not open it does nothing.
func (o *Outbox) Clear(device api.Device, code string) error {
	if err := checkFault(device, code, api.SeverityWarn); err != nil {
		return err
	}
	return o.write(func(ctx context.Context, tx *sql.Tx, st *state) error {
		f, err := openFault(ctx, tx, device, code)
		if errors.Is(err, sql.ErrNoRows) {
			return errNoChange
		} else if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		if _, err := o.appendEvent(ctx, tx, st, api.Event{Time: o.stamp(st), Type: api.EventFaultCleared, Fault: &f}); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM faults WHERE device = ? AND code = ?", string(device), code); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		return nil
	})
}

// OpenFaults returns the open faults sorted by device then code, as the
// status topic lists them.
func (o *Outbox) OpenFaults() ([]api.Fault, error) {
	rows, err := o.db.QueryContext(context.Background(),
		"SELECT device, code, severity, since_ms FROM faults ORDER BY device, code")
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	defer rows.Close()
	var fs []api.Fault
	for rows.Next() {
		f, err := scanFault(rows)
		if err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		fs = append(fs, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return fs, nil
}

// checkFault validates a fault's identity and severity against the contract.
func checkFault(device api.Device, code string, severity api.Severity) error {
	f := api.Fault{Code: code, Device: device, Severity: severity, Since: minTime}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("outbox: fault: %w", err)
	}
	return nil
}

func openFault(ctx context.Context, tx *sql.Tx, device api.Device, code string) (api.Fault, error) {
	return scanFault(tx.QueryRowContext(ctx,
		"SELECT device, code, severity, since_ms FROM faults WHERE device = ? AND code = ?", string(device), code))
}

func scanFault(row interface{ Scan(...any) error }) (api.Fault, error) {
	var f api.Fault
	var ms int64
	if err := row.Scan(&f.Device, &f.Code, &f.Severity, &ms); err != nil {
		return api.Fault{}, err
	}
	f.Since = time.UnixMilli(ms).UTC()
	return f, nil
}
