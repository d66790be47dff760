package store

import (
	"database/sql"
	"errors"
)

// Client is an application of a tenant: what the admin API mints for tests
// and what POST /api/v2/clients creates are the same records.
type Client struct {
	ClientID string `json:"client_id"`
	Domain   string `json:"domain"`
	Name     string `json:"name"`
	// SecretHash checks the secret at the token endpoint.
	SecretHash string `json:"secret_hash"`
	// SecretSealed is the secret sealed with the emulator's key, so the API
	// can answer it to a token with read:client_keys. Clients stored by an
	// older emulator have none: their secret is never answered.
	SecretSealed string `json:"secret_sealed,omitempty"`
	// Scopes is where an older emulator kept the client's Management API
	// grant; the server turns it into a ClientGrant at start.
	Scopes     []string `json:"scopes,omitempty"`
	GrantTypes []string `json:"grant_types"`
	// Doc is every other setting as the API answers it (app_type,
	// callbacks, jwt_configuration, ...).
	Doc map[string]any `json:"doc,omitempty"`
	Seq int64          `json:"-"`
}

// PutClient inserts or replaces c; a new client is ordered after every
// record so far.
func (q Q) PutClient(c Client) error {
	n, err := q.NextSeq()
	if err != nil {
		return err
	}
	_, err = q.ex.ExecContext(bg, `INSERT INTO clients(client_id, domain, doc, seq) VALUES(?, ?, ?, ?)
		ON CONFLICT(client_id) DO UPDATE SET doc = excluded.doc`, c.ClientID, c.Domain, mustJSON(c), n)
	return err
}

// Client returns the client with id, whatever its tenant.
func (q Q) Client(id string) (Client, error) {
	var (
		c   Client
		doc string
	)
	err := q.ex.QueryRowContext(bg, `SELECT seq, doc FROM clients WHERE client_id = ?`, id).Scan(&c.Seq, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNotFound
	}
	if err != nil {
		return c, err
	}
	s := c.Seq
	err = jsonUnmarshal(doc, &c)
	c.Seq = s
	return c, err
}

// TenantClient returns the client with id when it belongs to domain.
func (q Q) TenantClient(domain, id string) (Client, error) {
	c, err := q.Client(id)
	if err == nil && c.Domain != domain {
		return Client{}, ErrNotFound
	}
	return c, err
}

// ClientFilter selects clients; empty fields match everything.
type ClientFilter struct {
	ClientIDs []string
	AfterSeq  int64 // checkpoint pagination: only records after this one
}

// Clients lists a tenant's matching clients in creation order, with offset
// and limit (limit < 0: all), and the total number that match. Filters on
// settings (app_type, is_first_party) are the caller's: they live in Doc.
func (q Q) Clients(domain string, f ClientFilter, offset, limit int) ([]Client, int, error) {
	where, args := inList(`domain = ? AND seq > ?`, []any{domain, f.AfterSeq}, "client_id", f.ClientIDs)
	// Clients migrated from before seq existed share seq 0: client_id
	// orders them.
	return listPageOrdered(q, "clients", "seq, doc", where, args, nil, "seq, client_id", offset, limit,
		func(sc interface{ Scan(...any) error }) (Client, error) {
			return scanSeqDoc(sc, func(c *Client, seq int64) { c.Seq = seq })
		})
}

// AllClients lists every client of every tenant (for migrations).
func (q Q) AllClients() ([]Client, error) {
	return listDocs[Client](q, `SELECT doc FROM clients ORDER BY seq`)
}

// DeleteClient removes a client and its grants. It reports whether the
// client existed.
func (q Q) DeleteClient(domain, id string) (bool, error) {
	if _, err := q.ex.ExecContext(bg, `DELETE FROM client_grants WHERE domain = ? AND client_id = ?`, domain, id); err != nil {
		return false, err
	}
	res, err := q.ex.ExecContext(bg, `DELETE FROM clients WHERE domain = ? AND client_id = ?`, domain, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// ClientGrant lets a client get tokens for an API (audience) with scopes.
type ClientGrant struct {
	ID       string   `json:"id"`
	Domain   string   `json:"-"`
	ClientID string   `json:"client_id"`
	Audience string   `json:"audience"`
	Scope    []string `json:"scope"`
	// SubjectType is "client" (client credentials) or "user"; a client has
	// at most one grant of each type per audience.
	SubjectType string `json:"subject_type"`
	// Doc holds the other settings as answered (allow_any_organization,
	// organization_usage, authorization_details_types, ...).
	Doc map[string]any `json:"doc,omitempty"`
	Seq int64          `json:"-"`
}

// CreateClientGrant inserts g; ErrConflict when the client already has a
// grant of that subject type for the audience.
func (q Q) CreateClientGrant(g *ClientGrant) error {
	n, err := q.NextSeq()
	if err != nil {
		return err
	}
	g.Seq = n
	_, err = q.ex.ExecContext(bg, `INSERT INTO client_grants(id, domain, client_id, audience, subject_type, seq, doc) VALUES(?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.Domain, g.ClientID, g.Audience, g.SubjectType, n, mustJSON(g))
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

// PutClientGrant replaces an existing grant's document.
func (q Q) PutClientGrant(g ClientGrant) error {
	_, err := q.ex.ExecContext(bg, `UPDATE client_grants SET doc = ? WHERE domain = ? AND id = ?`, mustJSON(g), g.Domain, g.ID)
	return err
}

const grantCols = `domain, seq, doc`

func scanGrant(sc interface{ Scan(...any) error }) (ClientGrant, error) {
	var (
		g   ClientGrant
		doc string
	)
	if err := sc.Scan(&g.Domain, &g.Seq, &doc); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return g, ErrNotFound
		}
		return g, err
	}
	d, s := g.Domain, g.Seq
	err := jsonUnmarshal(doc, &g)
	g.Domain, g.Seq = d, s
	return g, err
}

// ClientGrant returns the grant with id.
func (q Q) ClientGrant(domain, id string) (ClientGrant, error) {
	return scanGrant(q.ex.QueryRowContext(bg, `SELECT `+grantCols+` FROM client_grants WHERE domain = ? AND id = ?`, domain, id))
}

// ClientGrantFor returns a client's grant of subjectType for audience.
func (q Q) ClientGrantFor(domain, clientID, audience, subjectType string) (ClientGrant, error) {
	return scanGrant(q.ex.QueryRowContext(bg, `SELECT `+grantCols+` FROM client_grants WHERE domain = ? AND client_id = ? AND audience = ? AND subject_type = ?`,
		domain, clientID, audience, subjectType))
}

// ClientGrantFilter selects grants; empty fields match everything.
type ClientGrantFilter struct {
	ClientID, Audience, SubjectType string
	AfterSeq                        int64
}

// ClientGrants lists matching grants in creation order, with offset and
// limit (limit < 0: all), and the total number that match.
func (q Q) ClientGrants(domain string, f ClientGrantFilter, offset, limit int) ([]ClientGrant, int, error) {
	return listPage(q, "client_grants", grantCols, `domain = ? AND seq > ?`, []any{domain, f.AfterSeq},
		[]filter{{"client_id", f.ClientID}, {"audience", f.Audience}, {"subject_type", f.SubjectType}}, offset, limit, scanGrant)
}

// DeleteClientGrant removes a grant and reports whether it existed.
func (q Q) DeleteClientGrant(domain, id string) (bool, error) {
	res, err := q.ex.ExecContext(bg, `DELETE FROM client_grants WHERE domain = ? AND id = ?`, domain, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
