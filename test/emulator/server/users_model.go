package server

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/tenantops/identity-operator/test/emulator/internal/password"
	"github.com/tenantops/identity-operator/test/emulator/internal/store"
)

// idpTokenFields are the identity-provider secrets in identities[].
var idpTokenFields = []string{"access_token", "refresh_token", "access_token_secret"}

var emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)

func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// userView is a user as answered; identity-provider tokens only when the
// caller may see them.
func userView(u store.User, idpTokens bool) map[string]any {
	v := copyMap(u.Doc)
	if !idpTokens {
		stripIdPTokens(v)
	}
	return v
}

func stripIdPTokens(doc map[string]any) {
	ids, _ := doc["identities"].([]any)
	for _, id := range ids {
		if m, ok := id.(map[string]any); ok {
			for _, k := range idpTokenFields {
				delete(m, k)
			}
		}
	}
}

// userSpec is what a new database user is made of.
type userSpec struct {
	// ID is the id part of the user_id ("auth0|<ID>"); empty: generated.
	ID, Email, Username, Password string
	Profile                       map[string]any
}

// connectionValidation reports whether strategy_version 2 validation is on.
func connectionValidation(c store.Connection) bool { return toInt(c.Options["strategy_version"]) >= 2 }

// newDatabaseUser validates spec against the connection's rules and returns
// the store record. The returned message is for the caller's error answer.
func newDatabaseUser(q store.Q, c store.Connection, spec userSpec, now time.Time) (store.User, string, error) {
	email, username := spec.Email, spec.Username
	validate := connectionValidation(c)
	if validate {
		email, username = strings.ToLower(email), strings.ToLower(username)
		if email == "" {
			return store.User{}, "email is required", nil
		}
		if !emailRE.MatchString(email) {
			return store.User{}, "email is not well formed", nil
		}
		if boolOf(c.Options, "requires_username") && username == "" {
			return store.User{}, "username is required", nil
		}
		if username != "" {
			min, max := 1, 15
			if v, ok := c.Options["validation"].(map[string]any); ok {
				if un, ok := v["username"].(map[string]any); ok {
					if n := toInt(un["min"]); n > 0 {
						min = n
					}
					if n := toInt(un["max"]); n > 0 {
						max = n
					}
				}
			}
			if l := len([]rune(username)); l < min || l > max {
				return store.User{}, fmt.Sprintf("username must be %d to %d characters long", min, max), nil
			}
		}
	}
	if email != "" {
		_, n, err := q.Users(c.Domain, store.UserFilter{Connection: c.Name, Email: email}, 0, 1)
		if err != nil {
			return store.User{}, "", err
		}
		if n > 0 {
			return store.User{}, "the user already exists", nil
		}
	}
	if username != "" {
		_, n, err := q.Users(c.Domain, store.UserFilter{Connection: c.Name, Username: username}, 0, 1)
		if err != nil {
			return store.User{}, "", err
		}
		if n > 0 {
			return store.User{}, "the username is already taken", nil
		}
	}
	id := spec.ID
	if id == "" {
		id = randomID(12)
	}
	userID := "auth0|" + id
	p := spec.Profile
	doc := map[string]any{}
	for _, k := range []string{"name", "nickname", "picture", "given_name", "family_name", "user_metadata", "app_metadata", "email_verified"} {
		if v, ok := p[k]; ok && v != nil {
			doc[k] = v
		}
	}
	doc["user_id"] = userID
	if email != "" {
		doc["email"] = email
	}
	if username != "" {
		doc["username"] = username
	}
	if _, ok := doc["email_verified"]; !ok {
		doc["email_verified"] = false
	}
	if _, ok := doc["name"]; !ok {
		doc["name"] = firstNonEmpty(email, username)
	}
	if _, ok := doc["nickname"]; !ok {
		doc["nickname"] = strings.SplitN(firstNonEmpty(email, username), "@", 2)[0]
	}
	if _, ok := doc["picture"]; !ok {
		sum := md5.Sum([]byte(strings.ToLower(email)))
		doc["picture"] = "https://s.gravatar.com/avatar/" + hex.EncodeToString(sum[:]) + "?s=480&r=pg&d=mp"
	}
	for _, k := range []string{"user_metadata", "app_metadata"} {
		if _, ok := doc[k]; !ok {
			doc[k] = map[string]any{}
		}
	}
	doc["created_at"] = timestamp(now)
	doc["updated_at"] = timestamp(now)
	doc["logins_count"] = 0
	doc["identities"] = []any{map[string]any{"connection": c.Name, "user_id": id, "provider": "auth0", "isSocial": false}}
	u := store.User{Domain: c.Domain, UserID: userID, Connection: c.Name, Email: email, Username: username, Doc: doc}
	if spec.Password != "" {
		u.PasswordHash = password.Hash(spec.Password)
	}
	return u, "", nil
}

func firstNonEmpty(s ...string) string {
	for _, e := range s {
		if e != "" {
			return e
		}
	}
	return ""
}

// passwordPolicy is the connection's policy.
func passwordPolicy(c store.Connection) password.Policy {
	p := password.Policy{Name: strOf(c.Options, "passwordPolicy")}
	if pc, ok := c.Options["password_complexity_options"].(map[string]any); ok {
		p.MinLength = toInt(pc["min_length"])
	}
	return p
}

// profileID returns a script profile's user_id (or id) as a string.
func profileID(p map[string]any) string {
	for _, k := range []string{"user_id", "id"} {
		switch v := p[k].(type) {
		case string:
			return strings.TrimPrefix(v, "auth0|")
		case int64, float64, int:
			return fmt.Sprint(v)
		}
	}
	return ""
}
