package scripts

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRequestModuleSpeaksTheNpmRequestDialect(t *testing.T) {
	var got struct {
		Method, Path, Query, User, Pass, ContentType, Header, Body string
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Method, got.Path, got.Query, got.ContentType, got.Header, got.Body = r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), r.Header.Get("X-Trace"), string(b)
		got.User, got.Pass, _ = r.BasicAuth()
		w.Header().Set("X-Answer", "yes")
		_, _ = w.Write([]byte(`{"id": 7, "email": "a@example.com"}`))
	}))
	defer srv.Close()
	r := New(2*time.Second, nil)
	const script = `function login(email, password, callback) {
  var request = require('request');
  request.post({ url: configuration.URL + '/users', qs: { page: 2 }, auth: { user: email, pass: password },
                 headers: { 'X-Trace': 'abc' }, json: { hello: 'world' } },
    function (err, response, body) {
      if (err) return callback(err);
      callback(null, { status: response.statusCode, answer: response.headers['x-answer'], id: body.id });
    });
}`
	res, err := r.Run(context.Background(), "login", script, map[string]string{"URL": srv.URL}, "a@example.com", "pw")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	if string(b) != `{"answer":"yes","id":7,"status":200}` {
		t.Errorf("script saw %s", b)
	}
	if got.Method != "POST" || got.Path != "/users" || got.Query != "page=2" || got.User != "a@example.com" || got.Pass != "pw" ||
		got.ContentType != "application/json" || got.Header != "abc" || got.Body != `{"hello":"world"}` {
		t.Errorf("service saw %+v", got)
	}
}

func TestRunReportsThePlatformsErrorTypes(t *testing.T) {
	r := New(300*time.Millisecond, nil)
	var wrong *WrongCredentialsError
	var invalid *ValidationError
	cases := []struct {
		name, script string
		check        func(error) bool
	}{
		{"wrong credentials", `function (e, p, cb) { cb(new WrongUsernameOrPasswordError(e, 'no')); }`, func(err error) bool { return errors.As(err, &wrong) && wrong.Message == "no" }},
		{"validation", `function (e, p, cb) { cb(new ValidationError('code', 'msg')); }`, func(err error) bool { return errors.As(err, &invalid) && invalid.Code == "code" }},
		{"timeout", `function (e, p, cb) { for (;;) {} }`, func(err error) bool { return errors.Is(err, ErrTimeout) }},
		{"no callback", `function (e, p, cb) { return 1; }`, func(err error) bool { return errors.Is(err, ErrNoCallback) }},
		{"no network beyond loopback", `function (e, p, cb) { require('request').get('http://192.0.2.1/', function (err) { cb(err); }); }`,
			func(err error) bool { return err != nil && !errors.Is(err, ErrTimeout) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.Run(context.Background(), "login", c.script, nil, "e", "p")
			if !c.check(err) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestCheckNamesTheSyntaxError(t *testing.T) {
	if err := Check("get_user", "function getByEmail(email, callback) {"); err == nil {
		t.Fatal("a syntax error passed")
	}
	if err := Check("login", "function login(e, p, cb) { cb(null, null); }"); err != nil {
		t.Fatal(err)
	}
}
