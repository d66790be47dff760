package store

import (
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/tenantops/identity-operator/test/emulator/internal/ratelimit"
)

// Tenant is one tenant of the platform, addressed by its domain.
type Tenant struct {
	Domain   string         `json:"domain"`
	Settings map[string]any `json:"settings"`
	// RefusedFlags are the flags PATCH /api/v2/tenants/settings answers 400 for.
	RefusedFlags []string `json:"refused_flags"`
	// RateLimit overrides the emulator-wide limit when set.
	RateLimit *ratelimit.Limit `json:"rate_limit,omitempty"`
	CreatedAt time.Time        `json:"created_at"`
}

// CreateTenant inserts t; ErrConflict when the domain exists.
func (q Q) CreateTenant(t Tenant) error {
	n, err := q.NextSeq()
	if err != nil {
		return err
	}
	_, err = q.ex.ExecContext(bg, `INSERT INTO tenants(domain, seq, doc) VALUES(?, ?, ?)`, t.Domain, n, mustJSON(t))
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

// Tenant returns the tenant with domain.
func (q Q) Tenant(domain string) (Tenant, error) {
	var t Tenant
	err := getDoc(q, &t, `SELECT doc FROM tenants WHERE domain = ?`, domain)
	return t, err
}

// PutTenant replaces an existing tenant.
func (q Q) PutTenant(t Tenant) error {
	_, err := q.ex.ExecContext(bg, `UPDATE tenants SET doc = ? WHERE domain = ?`, mustJSON(t), t.Domain)
	return err
}

// Tenants lists every tenant in creation order.
func (q Q) Tenants() ([]Tenant, error) {
	return listDocs[Tenant](q, `SELECT doc FROM tenants ORDER BY seq`)
}

// Connection is a connection as stored: Options holds configuration values
// sealed (see secretbox), exactly as they are answered.
type Connection struct {
	ID             string         `json:"id"`
	Domain         string         `json:"-"`
	Name           string         `json:"name"`
	Strategy       string         `json:"strategy"`
	DisplayName    string         `json:"display_name,omitempty"`
	Options        map[string]any `json:"options"`
	EnabledClients []string       `json:"enabled_clients"`
	Realms         []string       `json:"realms"`
	Metadata       map[string]any `json:"metadata,omitempty"`
	Seq            int64          `json:"-"`
}

// CreateConnection inserts c; ErrConflict when the name is taken.
func (q Q) CreateConnection(c *Connection) error {
	n, err := q.NextSeq()
	if err != nil {
		return err
	}
	c.Seq = n
	_, err = q.ex.ExecContext(bg, `INSERT INTO connections(id, domain, name, strategy, seq, doc) VALUES(?, ?, ?, ?, ?, ?)`,
		c.ID, c.Domain, c.Name, c.Strategy, n, mustJSON(c))
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

// PutConnection replaces an existing connection's document.
func (q Q) PutConnection(c Connection) error {
	_, err := q.ex.ExecContext(bg, `UPDATE connections SET doc = ? WHERE domain = ? AND id = ?`, mustJSON(c), c.Domain, c.ID)
	return err
}

func (q Q) connection(where string, args ...any) (Connection, error) {
	var (
		c   Connection
		doc string
	)
	err := q.ex.QueryRowContext(bg, `SELECT domain, seq, doc FROM connections WHERE `+where, args...).Scan(&c.Domain, &c.Seq, &doc)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return c, ErrNotFound
		}
		return c, err
	}
	d, s := c.Domain, c.Seq
	if err := jsonUnmarshal(doc, &c); err != nil {
		return c, err
	}
	c.Domain, c.Seq = d, s
	return c, nil
}

// Connection returns the connection with id.
func (q Q) Connection(domain, id string) (Connection, error) {
	return q.connection(`domain = ? AND id = ?`, domain, id)
}

// ConnectionByName returns the connection named name.
func (q Q) ConnectionByName(domain, name string) (Connection, error) {
	return q.connection(`domain = ? AND name = ?`, domain, name)
}

// ConnectionFilter selects connections; empty fields match everything.
type ConnectionFilter struct {
	Strategies []string
	Name       string
	AfterSeq   int64 // checkpoint pagination: only records after this one
}

// Connections lists matching connections in creation order, with offset and
// limit (limit < 0: all), and the total number that match.
func (q Q) Connections(domain string, f ConnectionFilter, offset, limit int) ([]Connection, int, error) {
	where, args := inList(`domain = ? AND seq > ?`, []any{domain, f.AfterSeq}, "strategy", f.Strategies)
	return listPage(q, "connections", "seq, doc", where, args, []filter{{"name", f.Name}}, offset, limit,
		func(sc interface{ Scan(...any) error }) (Connection, error) {
			return scanSeqDoc(sc, func(c *Connection, seq int64) { c.Seq, c.Domain = seq, domain })
		})
}

// DeleteConnection removes a connection and its users (the platform deletes
// a database's users with it). It reports whether anything was deleted.
func (q Q) DeleteConnection(domain, id string) (bool, error) {
	c, err := q.Connection(domain, id)
	if err == ErrNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := q.ex.ExecContext(bg, `DELETE FROM users WHERE domain = ? AND connection = ?`, domain, c.Name); err != nil {
		return false, err
	}
	_, err = q.ex.ExecContext(bg, `DELETE FROM connections WHERE domain = ? AND id = ?`, domain, id)
	return err == nil, err
}

// User is a user in the platform's own store. Doc is the profile as
// answered (user_id, email, identities, ...); the columns serve lookups.
type User struct {
	Domain       string
	UserID       string
	Connection   string
	Email        string // as stored; compared case-insensitively
	Username     string
	PasswordHash string
	Doc          map[string]any
}

const userCols = `domain, user_id, connection, email, username, password_hash, doc`

func scanUser(sc interface{ Scan(...any) error }) (User, error) {
	var (
		u   User
		doc string
	)
	if err := sc.Scan(&u.Domain, &u.UserID, &u.Connection, &u.Email, &u.Username, &u.PasswordHash, &doc); err != nil {
		return u, err
	}
	return u, jsonUnmarshal(doc, &u.Doc)
}

// CreateUser inserts u; ErrConflict when the user_id exists.
func (q Q) CreateUser(u User) error {
	n, err := q.NextSeq()
	if err != nil {
		return err
	}
	_, err = q.ex.ExecContext(bg, `INSERT INTO users(`+userCols+`, seq) VALUES(?, ?, ?, ?, ?, ?, ?, ?)`,
		u.Domain, u.UserID, u.Connection, strings.ToLower(u.Email), strings.ToLower(u.Username), u.PasswordHash, mustJSON(u.Doc), n)
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

// PutUser replaces an existing user.
func (q Q) PutUser(u User) error {
	_, err := q.ex.ExecContext(bg, `UPDATE users SET email = ?, username = ?, password_hash = ?, doc = ? WHERE domain = ? AND user_id = ?`,
		strings.ToLower(u.Email), strings.ToLower(u.Username), u.PasswordHash, mustJSON(u.Doc), u.Domain, u.UserID)
	return err
}

// User returns the user with id.
func (q Q) User(domain, id string) (User, error) {
	u, err := scanUser(q.ex.QueryRowContext(bg, `SELECT `+userCols+` FROM users WHERE domain = ? AND user_id = ?`, domain, id))
	if err != nil && errors.Is(err, sql.ErrNoRows) {
		return u, ErrNotFound
	}
	return u, err
}

// UserByLogin finds a user of connection by email or username, ignoring case.
func (q Q) UserByLogin(domain, connection, login string) (User, error) {
	l := strings.ToLower(login)
	u, err := scanUser(q.ex.QueryRowContext(bg, `SELECT `+userCols+` FROM users WHERE domain = ? AND connection = ? AND (email = ? OR (username != '' AND username = ?)) ORDER BY seq LIMIT 1`, domain, connection, l, l))
	if err != nil && errors.Is(err, sql.ErrNoRows) {
		return u, ErrNotFound
	}
	return u, err
}

// UserFilter selects users; empty fields match everything. Email and
// Username compare case-insensitively.
type UserFilter struct {
	Connection, Email, Username, UserID string
}

// Users lists matching users in creation order with offset and limit.
func (q Q) Users(domain string, f UserFilter, offset, limit int) ([]User, int, error) {
	return listPage(q, "users", userCols, `domain = ?`, []any{domain},
		[]filter{{"connection", f.Connection}, {"email", strings.ToLower(f.Email)}, {"username", strings.ToLower(f.Username)}, {"user_id", f.UserID}},
		offset, limit, scanUser)
}

// CountUsers counts the users of a connection.
func (q Q) CountUsers(domain, connection string) (int, error) {
	return count(q, `SELECT count(*) FROM users WHERE domain = ? AND connection = ?`, domain, connection)
}

// DeleteUser removes a user; deleting a missing user is not an error.
func (q Q) DeleteUser(domain, id string) error {
	_, err := q.ex.ExecContext(bg, `DELETE FROM users WHERE domain = ? AND user_id = ?`, domain, id)
	return err
}

// EmailProvider returns the tenant's one email provider, credentials
// included, or ErrNotFound.
func (q Q) EmailProvider(domain string) (map[string]any, error) {
	var d map[string]any
	err := getDoc(q, &d, `SELECT doc FROM email_providers WHERE domain = ?`, domain)
	return d, err
}

// PutEmailProvider stores the tenant's one provider, credentials included.
func (q Q) PutEmailProvider(domain string, doc map[string]any) error {
	_, err := q.ex.ExecContext(bg, `INSERT INTO email_providers(domain, doc) VALUES(?, ?) ON CONFLICT(domain) DO UPDATE SET doc = excluded.doc`, domain, mustJSON(doc))
	return err
}

// DeleteEmailProvider removes the provider if any.
func (q Q) DeleteEmailProvider(domain string) error {
	_, err := q.ex.ExecContext(bg, `DELETE FROM email_providers WHERE domain = ?`, domain)
	return err
}

// EmailTemplate returns a stored template.
func (q Q) EmailTemplate(domain, name string) (map[string]any, error) {
	var d map[string]any
	err := getDoc(q, &d, `SELECT doc FROM email_templates WHERE domain = ? AND name = ?`, domain, name)
	return d, err
}

// PutEmailTemplate inserts or replaces a template.
func (q Q) PutEmailTemplate(domain, name string, doc map[string]any) error {
	_, err := q.ex.ExecContext(bg, `INSERT INTO email_templates(domain, name, doc) VALUES(?, ?, ?) ON CONFLICT(domain, name) DO UPDATE SET doc = excluded.doc`, domain, name, mustJSON(doc))
	return err
}

// Ticket is a password-reset link or ticket, or an old-flow confirmation
// link carrying the password to set. Subject names whose ticket it is: the
// user_id, or "pending:<connection>:<email>" for a user not yet migrated.
type Ticket struct {
	ID      string `json:"id"`
	Domain  string `json:"domain"`
	Subject string `json:"subject"`
	// Kind is "reset" (a form sets the password) or "confirm" (the old flow:
	// following the link applies NewPasswordHash).
	Kind            string         `json:"kind"`
	UserID          string         `json:"user_id,omitempty"`
	Connection      string         `json:"connection"`
	Email           string         `json:"email"`
	PendingProfile  map[string]any `json:"pending_profile,omitempty"`
	NewPasswordHash string         `json:"new_password_hash,omitempty"`
	// NewPasswordSealed is the old flow's password for a user who lives in
	// a legacy store: its change_password script needs it in plain text.
	NewPasswordSealed string     `json:"new_password_sealed,omitempty"`
	ResultURL         string     `json:"result_url,omitempty"`
	IncludeEmail      bool       `json:"include_email,omitempty"`
	MarkEmailVerified bool       `json:"mark_email_verified,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
	ExpiresAt         time.Time  `json:"expires_at"`
	UsedAt            *time.Time `json:"used_at,omitempty"`
	Superseded        bool       `json:"superseded,omitempty"`
}

// CreateTicket stores t and supersedes every older ticket of its subject:
// only the newest link for a user works.
func (q Q) CreateTicket(t Ticket) error {
	old, err := listDocs[Ticket](q, `SELECT doc FROM tickets WHERE domain = ? AND subject = ?`, t.Domain, t.Subject)
	if err != nil {
		return err
	}
	for _, o := range old {
		if !o.Superseded {
			o.Superseded = true
			if err := q.PutTicket(o); err != nil {
				return err
			}
		}
	}
	n, err := q.NextSeq()
	if err != nil {
		return err
	}
	_, err = q.ex.ExecContext(bg, `INSERT INTO tickets(id, domain, subject, seq, doc) VALUES(?, ?, ?, ?, ?)`, t.ID, t.Domain, t.Subject, n, mustJSON(t))
	return err
}

// PutTicket replaces a ticket.
func (q Q) PutTicket(t Ticket) error {
	_, err := q.ex.ExecContext(bg, `UPDATE tickets SET doc = ? WHERE id = ?`, mustJSON(t), t.ID)
	return err
}

// Ticket returns the ticket with id on domain.
func (q Q) Ticket(domain, id string) (Ticket, error) {
	var t Ticket
	err := getDoc(q, &t, `SELECT doc FROM tickets WHERE domain = ? AND id = ?`, domain, id)
	return t, err
}

// Mail is one message the platform sent, kept for inspection.
type Mail struct {
	ID        int64     `json:"id"`
	Domain    string    `json:"domain"`
	Template  string    `json:"template"`
	To        string    `json:"to"`
	From      string    `json:"from"`
	Subject   string    `json:"subject"`
	Body      string    `json:"body"`
	URL       string    `json:"url,omitempty"`
	Provider  string    `json:"provider"`
	Delivery  string    `json:"delivery"` // "outbox" or "smtp"
	Error     string    `json:"error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// AddMail appends m to the outbox and returns its id.
func (q Q) AddMail(m Mail) (int64, error) {
	var id int64
	err := q.ex.QueryRowContext(bg, `INSERT INTO outbox(domain, doc) VALUES(?, '{}') RETURNING id`, m.Domain).Scan(&id)
	if err != nil {
		return 0, err
	}
	m.ID = id
	_, err = q.ex.ExecContext(bg, `UPDATE outbox SET doc = ? WHERE id = ?`, mustJSON(m), id)
	return id, err
}

// Outbox lists a tenant's mail, oldest first.
func (q Q) Outbox(domain string) ([]Mail, error) {
	return listDocs[Mail](q, `SELECT doc FROM outbox WHERE domain = ? ORDER BY id`, domain)
}
