package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// legacyUser is a user of the demo legacy user service.
type legacyUser struct {
	ID       string `json:"id"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	password string
}

// startLegacyService serves the legacy user store the sample
// CustomDatabaseConnection migrates from: POST /login {email, password} and
// GET /users?email=, behind Basic Auth, as the platform's "web service with
// Basic Auth" template expects.
func startLegacyService(addr, user, password string) (io.Closer, error) {
	users := map[string]legacyUser{}
	for _, u := range []legacyUser{
		{ID: "1001", Email: "alice@acme.example", Name: "Alice Legacy", password: "Alice-password-1"},
		{ID: "1002", Email: "bob@acme.example", Name: "Bob Legacy", password: "Bob-password-1"},
		{ID: "1003", Email: "carol@acme.example", Name: "Carol Legacy", password: "Carol-password-1"},
	} {
		users[u.Email] = u
	}
	mux := http.NewServeMux()
	authorized := func(w http.ResponseWriter, r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="legacy"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return false
		}
		return true
	}
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		var body struct{ Email, Password string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		u, ok := users[strings.ToLower(body.Email)]
		if !ok || u.password != body.Password {
			http.Error(w, "wrong email or password", http.StatusUnauthorized)
			return
		}
		writeUser(w, u)
	})
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		u, ok := users[strings.ToLower(r.URL.Query().Get("email"))]
		if !ok {
			http.NotFound(w, r)
			return
		}
		writeUser(w, u)
	})
	ln, err := listenLoopback(addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	return httpCloser{srv}, nil
}

func writeUser(w http.ResponseWriter, u legacyUser) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(u)
}
