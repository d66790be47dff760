package server

import (
	"context"
	"errors"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tenantops/identity-operator/test/emulator/internal/password"
	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// defaultLinkLifetime is the platform's default for reset links and tickets
// (5 days).
const defaultLinkLifetime = 432000 * time.Second

// resetURL is the link of a reset ticket; the platform ends it with "#".
// base is publicBase of the request that made it.
func resetURL(base, id string) string {
	return base + "/u/reset-password?ticket=" + id + "#"
}

func confirmURL(base, id string) string { return base + "/lo/reset?ticket=" + id }

// publicBase is "https://" and the host a request reached the tenant by:
// its Host header, port included. The platform's links carry no port; the
// emulator serves every tenant on its listen port, so a link made for a
// person who came by port 8443 must keep it to work. A request without a
// port (as in Go tests, which dial the emulator whatever the URL says)
// gets the platform's portless links.
func publicBase(r *http.Request) string {
	domain := tenantOf(r)
	host := strings.ToLower(r.Host)
	if h, port, err := net.SplitHostPort(host); err == nil && strings.TrimSuffix(h, ".") == domain && port != "443" {
		return "https://" + domain + ":" + port
	}
	return "https://" + domain
}

// newTicket builds a ticket for a user in the store or, when u is empty, for
// an un-migrated user described by pending.
func newTicket(c store.Connection, u store.User, email string, pending map[string]any, now time.Time, ttl time.Duration) store.Ticket {
	t := store.Ticket{ID: randomAlnum(32), Domain: c.Domain, Connection: c.Name, Kind: "reset", CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if u.UserID != "" {
		t.UserID, t.Subject, t.Email = u.UserID, u.UserID, u.Email
	} else {
		t.Email, t.PendingProfile = email, pending
		t.Subject = "pending:" + c.Name + ":" + email
	}
	return t
}

// resetLifetime is the reset_email template's urlLifetimeInSeconds, or the
// default.
func resetLifetime(q store.Q, domain string) (time.Duration, string) {
	t, err := q.EmailTemplate(domain, "reset_email")
	if err != nil {
		return defaultLinkLifetime, ""
	}
	ttl := defaultLinkLifetime
	if n := toInt(t["urlLifetimeInSeconds"]); n > 0 {
		ttl = time.Duration(n) * time.Second
	}
	return ttl, strOf(t, "resultUrl")
}

// ticketState explains why a ticket cannot be used, or "" when it can.
func ticketState(t store.Ticket, kind string, now time.Time) string {
	switch {
	case t.Kind != kind:
		return "This link is not valid."
	case t.UsedAt != nil:
		return "This link has already been used."
	case t.Superseded:
		return "This link is no longer valid: a newer one was sent."
	case !now.Before(t.ExpiresAt):
		return "This link has expired."
	}
	return ""
}

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1>
{{if .Message}}<p id="message">{{.Message}}</p>{{end}}
{{if .Ticket}}<form method="post" action="/u/reset-password">
<input type="hidden" name="ticket" value="{{.Ticket}}">
{{if .Email}}<p>Changing the password of <span id="email">{{.Email}}</span></p>{{end}}
<label>New password <input type="password" name="newPassword" autocomplete="new-password" required></label>
<label>Confirm new password <input type="password" name="confirmNewPassword" autocomplete="new-password" required></label>
<button type="submit">Reset password</button>
</form>{{end}}
</body></html>
`))

type htmlPage struct{ Title, Message, Ticket, Email string }

func writePage(w http.ResponseWriter, status int, p htmlPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, p)
}

// resetPage shows the reset form for a usable ticket.
func (s *Server) resetPage(w http.ResponseWriter, r *http.Request) {
	t, err := s.store.Q().Ticket(tenantOf(r), r.URL.Query().Get("ticket"))
	if err != nil {
		writePage(w, http.StatusNotFound, htmlPage{Title: "Change Password", Message: "This link is not valid."})
		return
	}
	if msg := ticketState(t, "reset", s.now()); msg != "" {
		writePage(w, http.StatusBadRequest, htmlPage{Title: "Change Password", Message: msg})
		return
	}
	writePage(w, http.StatusOK, htmlPage{Title: "Change Password", Ticket: t.ID, Email: t.Email})
}

// resetSubmit sets the password from the form; the ticket is spent.
func (s *Server) resetSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writePage(w, http.StatusBadRequest, htmlPage{Title: "Change Password", Message: "The form could not be read."})
		return
	}
	domain, id := tenantOf(r), r.PostForm.Get("ticket")
	pw, confirm := r.PostForm.Get("newPassword"), r.PostForm.Get("confirmNewPassword")
	if t, err := s.store.Q().Ticket(domain, id); err == nil {
		if c, err := s.store.Q().ConnectionByName(domain, t.Connection); err == nil && legacyOwned(c) {
			s.resetInLegacyStore(w, r, t, c, pw, confirm)
			return
		}
	}
	var (
		status = http.StatusOK
		msg    string
		done   store.Ticket
	)
	err := s.store.Tx(func(q store.Q) error {
		t, err := q.Ticket(domain, id)
		if errors.Is(err, store.ErrNotFound) {
			status, msg = http.StatusNotFound, "This link is not valid."
			return nil
		}
		if err != nil {
			return err
		}
		now := s.now()
		if m := ticketState(t, "reset", now); m != "" {
			status, msg = http.StatusBadRequest, m
			return nil
		}
		if pw == "" || pw != confirm {
			status, msg = http.StatusBadRequest, "The passwords do not match."
			return nil
		}
		c, err := q.ConnectionByName(domain, t.Connection)
		if err != nil {
			status, msg = http.StatusBadRequest, "This link is not valid."
			return nil
		}
		if rule := passwordPolicy(c).Check(pw); rule != "" {
			status, msg = http.StatusBadRequest, "Password is too weak: "+rule
			return nil
		}
		if t.UserID == "" {
			// An un-migrated user confirmed a new password: create them with
			// it and the profile get_user returned.
			email, _ := t.PendingProfile["email"].(string)
			username, _ := t.PendingProfile["username"].(string)
			u, m, err := newDatabaseUser(q, c, userSpec{ID: profileID(t.PendingProfile), Email: firstNonEmpty(email, t.Email), Username: username, Password: pw, Profile: t.PendingProfile}, now)
			if err != nil {
				return err
			}
			if m != "" {
				status, msg = http.StatusBadRequest, "The account cannot be migrated: "+m
				return nil
			}
			u.Doc["last_password_reset"] = timestamp(now)
			if t.MarkEmailVerified {
				u.Doc["email_verified"] = true
			}
			if err := q.CreateUser(u); err != nil {
				return err
			}
		} else {
			u, err := q.User(domain, t.UserID)
			if errors.Is(err, store.ErrNotFound) {
				status, msg = http.StatusBadRequest, "This link is not valid."
				return nil
			}
			if err != nil {
				return err
			}
			u.PasswordHash = password.Hash(pw)
			u.Doc["last_password_reset"] = timestamp(now)
			u.Doc["updated_at"] = timestamp(now)
			if t.MarkEmailVerified {
				u.Doc["email_verified"] = true
			}
			if err := q.PutUser(u); err != nil {
				return err
			}
		}
		t.UsedAt = &now
		done = t
		return q.PutTicket(t)
	})
	if err != nil {
		s.log.Error("reset: failed", "tenant", domain, "err", err)
		writePage(w, http.StatusInternalServerError, htmlPage{Title: "Change Password", Message: "Something went wrong. Try again."})
		return
	}
	if msg != "" {
		p := htmlPage{Title: "Change Password", Message: msg}
		if status == http.StatusBadRequest && (msg == "The passwords do not match." || len(msg) > 20 && msg[:20] == "Password is too weak") {
			p.Ticket = id // let the person try again with the same link
		}
		writePage(w, status, p)
		return
	}
	s.finishReset(w, r, done)
}

// finishReset sends the person to the ticket's result URL, or shows a page.
func (s *Server) finishReset(w http.ResponseWriter, r *http.Request, done store.Ticket) {
	if done.ResultURL != "" {
		if u, err := url.Parse(done.ResultURL); err == nil {
			q := u.Query()
			q.Set("success", "true")
			q.Set("code", "success")
			q.Set("message", "Your password has been changed successfully.")
			if done.IncludeEmail {
				q.Set("email", done.Email)
			}
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.String(), http.StatusFound)
			return
		}
	}
	writePage(w, http.StatusOK, htmlPage{Title: "Password Changed", Message: "Your password has been changed successfully."})
}

// resetInLegacyStore completes a reset for a user who lives in a legacy
// store: the change_password script sets the password there.
func (s *Server) resetInLegacyStore(w http.ResponseWriter, r *http.Request, t store.Ticket, c store.Connection, pw, confirm string) {
	now := s.now()
	if m := ticketState(t, "reset", now); m != "" {
		writePage(w, http.StatusBadRequest, htmlPage{Title: "Change Password", Message: m})
		return
	}
	if pw == "" || pw != confirm {
		writePage(w, http.StatusBadRequest, htmlPage{Title: "Change Password", Message: "The passwords do not match.", Ticket: t.ID})
		return
	}
	if rule := passwordPolicy(c).Check(pw); rule != "" {
		writePage(w, http.StatusBadRequest, htmlPage{Title: "Change Password", Message: "Password is too weak: " + rule, Ticket: t.ID})
		return
	}
	if err := s.legacyChangePassword(r.Context(), c, t.Email, pw); err != nil {
		s.log.Warn("reset: change_password script failed", "tenant", c.Domain, "connection", c.Name)
		writePage(w, http.StatusBadRequest, htmlPage{Title: "Change Password", Message: "The password could not be changed. Try again.", Ticket: t.ID})
		return
	}
	var stale bool
	err := s.store.Tx(func(q store.Q) error {
		cur, err := q.Ticket(t.Domain, t.ID)
		if err != nil {
			return err
		}
		if ticketState(cur, "reset", now) != "" {
			stale = true // spent meanwhile; the script already ran, as it would on the platform
			return nil
		}
		cur.UsedAt = &now
		t = cur
		return q.PutTicket(cur)
	})
	if err != nil || stale {
		writePage(w, http.StatusBadRequest, htmlPage{Title: "Change Password", Message: "This link has already been used."})
		return
	}
	s.finishReset(w, r, t)
}

// confirmPasswordChange is the old flow's link: following it applies the
// password that was sent with the change_password request. No form, no
// second factor: a stray click is enough, which is why the flow was retired.
func (s *Server) confirmPasswordChange(w http.ResponseWriter, r *http.Request) {
	domain, id := tenantOf(r), r.URL.Query().Get("ticket")
	if t, err := s.store.Q().Ticket(domain, id); err == nil && t.NewPasswordSealed != "" {
		if c, err := s.store.Q().ConnectionByName(domain, t.Connection); err == nil && legacyOwned(c) {
			s.confirmInLegacyStore(w, t, c)
			return
		}
	}
	var msg string
	err := s.store.Tx(func(q store.Q) error {
		t, err := q.Ticket(domain, id)
		if errors.Is(err, store.ErrNotFound) {
			msg = "This link is not valid."
			return nil
		}
		if err != nil {
			return err
		}
		now := s.now()
		if msg = ticketState(t, "confirm", now); msg != "" {
			return nil
		}
		if t.UserID == "" {
			c, err := q.ConnectionByName(domain, t.Connection)
			if err != nil {
				msg = "This link is not valid."
				return nil
			}
			u, m, err := newDatabaseUser(q, c, userSpec{ID: profileID(t.PendingProfile), Email: firstNonEmpty(strOf(t.PendingProfile, "email"), t.Email), Username: strOf(t.PendingProfile, "username"), Profile: t.PendingProfile}, now)
			if err != nil {
				return err
			}
			if m != "" {
				msg = "The account cannot be migrated: " + m
				return nil
			}
			u.PasswordHash = t.NewPasswordHash
			u.Doc["last_password_reset"] = timestamp(now)
			if err := q.CreateUser(u); err != nil {
				return err
			}
		} else {
			u, err := q.User(domain, t.UserID)
			if err != nil {
				msg = "This link is not valid."
				return nil
			}
			u.PasswordHash = t.NewPasswordHash
			u.Doc["last_password_reset"] = timestamp(now)
			u.Doc["updated_at"] = timestamp(now)
			if err := q.PutUser(u); err != nil {
				return err
			}
		}
		t.UsedAt = &now
		return q.PutTicket(t)
	})
	if err != nil {
		s.log.Error("confirm: failed", "tenant", domain, "err", err)
		writePage(w, http.StatusInternalServerError, htmlPage{Title: "Change Password", Message: "Something went wrong. Try again."})
		return
	}
	if msg != "" {
		writePage(w, http.StatusBadRequest, htmlPage{Title: "Change Password", Message: msg})
		return
	}
	writePage(w, http.StatusOK, htmlPage{Title: "Password Changed", Message: "Your password has been changed successfully."})
}

// confirmInLegacyStore applies the old flow's password through the
// change_password script of a legacy-owned connection.
func (s *Server) confirmInLegacyStore(w http.ResponseWriter, t store.Ticket, c store.Connection) {
	now := s.now()
	if m := ticketState(t, "confirm", now); m != "" {
		writePage(w, http.StatusBadRequest, htmlPage{Title: "Change Password", Message: m})
		return
	}
	pw, err := s.box.Open(t.NewPasswordSealed)
	if err == nil {
		err = s.legacyChangePassword(context.Background(), c, t.Email, pw)
	}
	if err != nil {
		writePage(w, http.StatusBadRequest, htmlPage{Title: "Change Password", Message: "The password could not be changed."})
		return
	}
	t.UsedAt = &now
	if err := s.store.Q().PutTicket(t); err != nil {
		s.log.Error("confirm: failed", "tenant", c.Domain, "err", err)
	}
	writePage(w, http.StatusOK, htmlPage{Title: "Password Changed", Message: "Your password has been changed successfully."})
}
