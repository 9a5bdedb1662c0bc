package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxName bounds a user or token name, in bytes.
const maxName = 64

// checkName checks a user or token name: 1 to 64 bytes of printable UTF-8.
func checkName(what, name string) error {
	if name == "" || len(name) > maxName || !utf8.ValidString(name) {
		return fmt.Errorf("store: bad %s name %q: want 1 to %d bytes of UTF-8", what, clip(name), maxName)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("store: bad %s name %q: control or invisible character", what, clip(name))
		}
	}
	return nil
}

func checkRole(r Role) error {
	switch r {
	case Admin, Technician, Manager:
		return nil
	}
	return fmt.Errorf("store: unknown role %q: want admin, technician or manager", clip(string(r)))
}

func checkTokenHash(h []byte) error {
	if len(h) != sha256.Size {
		return fmt.Errorf("store: token hash of %d bytes: want a SHA-256 (%d)", len(h), sha256.Size)
	}
	return nil
}

// AddUser implements Store.
func (s *db) AddUser(ctx context.Context, u User) error {
	if err := checkName("user", u.Name); err != nil {
		return err
	}
	if err := checkRole(u.Role); err != nil {
		return err
	}
	if err := checkHash("password hash", u.PasswordHash); err != nil {
		return err
	}
	if u.Created.IsZero() {
		return fmt.Errorf("store: AddUser: zero Created time")
	}
	n, err := affected(s.w.ExecContext(ctx, `INSERT INTO users (name, role, password_hash, created) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO NOTHING`, u.Name, string(u.Role), u.PasswordHash, s.d.time(u.Created)))
	if err == nil && n == 0 {
		err = ErrExists
	}
	return s.wrap("AddUser", err)
}

// SetPassword implements Store.
func (s *db) SetPassword(ctx context.Context, name string, hash []byte) error {
	if err := checkHash("password hash", hash); err != nil {
		return err
	}
	n, err := affected(s.w.ExecContext(ctx, "UPDATE users SET password_hash = $2 WHERE name = $1", name, hash))
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	return s.wrap("SetPassword", err)
}

// User implements Store.
func (s *db) User(ctx context.Context, name string) (User, error) {
	u := User{Name: name}
	err := s.r.QueryRowContext(ctx, "SELECT role, password_hash, created FROM users WHERE name = $1", name).
		Scan(&u.Role, &u.PasswordHash, timeCol{&u.Created})
	if err == sql.ErrNoRows {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, s.wrap("User", err)
	}
	return u, nil
}

// Users implements Store, ordered by name.
func (s *db) Users(ctx context.Context) ([]User, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT name, role, password_hash, created FROM users ORDER BY name")
	if err != nil {
		return nil, s.wrap("Users", err)
	}
	defer rows.Close()
	var us []User
	for rows.Next() {
		var u User
		if err := rows.Scan(&u.Name, &u.Role, &u.PasswordHash, timeCol{&u.Created}); err != nil {
			return nil, s.wrap("Users", err)
		}
		us = append(us, u)
	}
	return us, s.wrap("Users", rows.Err())
}

// maxCSRF bounds a session's CSRF token.
const maxCSRF = 256

// AddSession implements Store: ErrNotFound when the user does not exist,
// ErrExists when the token hash is taken. It first deletes the sessions
// expired at s.Created, so that they do not pile up.
func (s *db) AddSession(ctx context.Context, ses Session) error {
	if err := checkTokenHash(ses.TokenHash); err != nil {
		return err
	}
	if ses.CSRF == "" || len(ses.CSRF) > maxCSRF {
		return fmt.Errorf("store: AddSession: CSRF token of %d bytes: want 1 to %d", len(ses.CSRF), maxCSRF)
	}
	if ses.Created.IsZero() || !ses.Expires.After(ses.Created) {
		return fmt.Errorf("store: AddSession: want Created set and Expires after it")
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE expires <= $1", s.d.time(ses.Created)); err != nil {
			return err
		}
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM users WHERE name = $1", ses.User).Scan(&one)
		if err == sql.ErrNoRows {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		n, err := affected(tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, username, csrf, created, expires) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (token_hash) DO NOTHING`,
			ses.TokenHash, ses.User, ses.CSRF, s.d.time(ses.Created), s.d.time(ses.Expires)))
		if err == nil && n == 0 {
			err = ErrExists
		}
		return err
	})
	return s.wrap("AddSession", err)
}

// Session implements Store. An expired session found is deleted.
func (s *db) Session(ctx context.Context, tokenHash []byte, now time.Time) (Session, error) {
	ses := Session{TokenHash: tokenHash}
	err := s.r.QueryRowContext(ctx, "SELECT username, csrf, created, expires FROM sessions WHERE token_hash = $1", tokenHash).
		Scan(&ses.User, &ses.CSRF, timeCol{&ses.Created}, timeCol{&ses.Expires})
	if err == sql.ErrNoRows {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, s.wrap("Session", err)
	}
	if !ses.Expires.After(now) {
		if _, err := s.w.ExecContext(ctx, "DELETE FROM sessions WHERE token_hash = $1 AND expires <= $2", tokenHash, s.d.time(now)); err != nil {
			return Session{}, s.wrap("Session", err)
		}
		return Session{}, ErrNotFound
	}
	return ses, nil
}

// DeleteSession implements Store; deleting an unknown session is not an
// error.
func (s *db) DeleteSession(ctx context.Context, tokenHash []byte) error {
	_, err := s.w.ExecContext(ctx, "DELETE FROM sessions WHERE token_hash = $1", tokenHash)
	return s.wrap("DeleteSession", err)
}

// AddToken implements Store: ErrExists when the hash is taken.
func (s *db) AddToken(ctx context.Context, t Token) error {
	if err := checkTokenHash(t.TokenHash); err != nil {
		return err
	}
	if err := checkName("token", t.Name); err != nil {
		return err
	}
	if err := checkRole(t.Role); err != nil {
		return err
	}
	if t.Created.IsZero() {
		return fmt.Errorf("store: AddToken: zero Created time")
	}
	n, err := affected(s.w.ExecContext(ctx, `INSERT INTO tokens (token_hash, name, role, created) VALUES ($1, $2, $3, $4)
		ON CONFLICT (token_hash) DO NOTHING`, t.TokenHash, t.Name, string(t.Role), s.d.time(t.Created)))
	if err == nil && n == 0 {
		err = ErrExists
	}
	return s.wrap("AddToken", err)
}

// Token implements Store: ErrNotFound for an unknown hash.
func (s *db) Token(ctx context.Context, tokenHash []byte) (Token, error) {
	t := Token{TokenHash: tokenHash}
	err := s.r.QueryRowContext(ctx, "SELECT name, role, created FROM tokens WHERE token_hash = $1", tokenHash).
		Scan(&t.Name, &t.Role, timeCol{&t.Created})
	if err == sql.ErrNoRows {
		return Token{}, ErrNotFound
	}
	if err != nil {
		return Token{}, s.wrap("Token", err)
	}
	return t, nil
}
