package scripts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dop251/goja"
)

// LoopbackClient is an HTTP client that refuses every address outside the
// loopback range: the emulator runs in test environments, and a script must
// not be a way to reach other machines.
func LoopbackClient() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: nil}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
			if err != nil {
				return nil, err
			}
			for _, ip := range ips {
				if ip.IP.IsLoopback() {
					return d.DialContext(ctx, network, net.JoinHostPort(ip.IP.String(), port))
				}
			}
			return nil, fmt.Errorf("scripts may only reach loopback addresses, not %s", host)
		},
		MaxIdleConnsPerHost: 4,
	}
	return &http.Client{Transport: tr}
}

// requestModule is a synchronous subset of the `request` npm module that the
// platform's "web service with Basic Auth" templates use:
// request(opts, cb), request.get/post/put/patch/del(opts, cb), where opts is a
// URL or {url, method, auth:{username|user, password|pass}, headers, json,
// body, form, qs} and cb is called as cb(err, response, body) before the
// call returns.
func (r *Runner) requestModule(ctx context.Context, vm *goja.Runtime) goja.Value {
	call := func(method string) func(goja.FunctionCall) goja.Value {
		return func(c goja.FunctionCall) goja.Value {
			cb, _ := goja.AssertFunction(c.Argument(len(c.Arguments) - 1))
			resp, body, err := r.do(ctx, vm, method, c.Argument(0))
			if cb == nil {
				return goja.Undefined()
			}
			if err != nil {
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					panic(vm.NewGoError(ErrTimeout))
				}
				_, _ = cb(goja.Undefined(), vm.NewGoError(err))
				return goja.Undefined()
			}
			_, _ = cb(goja.Undefined(), goja.Null(), resp, body)
			return goja.Undefined()
		}
	}
	fn := vm.ToValue(call("")).ToObject(vm)
	for _, m := range []struct{ js, method string }{{"get", "GET"}, {"post", "POST"}, {"put", "PUT"}, {"patch", "PATCH"}, {"del", "DELETE"}, {"delete", "DELETE"}, {"head", "HEAD"}} {
		_ = fn.Set(m.js, call(m.method))
	}
	return fn
}

func (r *Runner) do(ctx context.Context, vm *goja.Runtime, method string, optsV goja.Value) (goja.Value, goja.Value, error) {
	var opts map[string]any
	if s, ok := optsV.Export().(string); ok {
		opts = map[string]any{"url": s}
	} else if m, ok := optsV.Export().(map[string]any); ok {
		opts = m
	} else {
		return nil, nil, errors.New("request: options must be a URL or an object")
	}
	str := func(m map[string]any, keys ...string) string {
		for _, k := range keys {
			if s, ok := m[k].(string); ok {
				return s
			}
		}
		return ""
	}
	rawURL := str(opts, "url", "uri")
	if method == "" {
		method = strings.ToUpper(str(opts, "method"))
		if method == "" {
			method = "GET"
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, err
	}
	if qs, ok := opts["qs"].(map[string]any); ok {
		q := u.Query()
		for k, v := range qs {
			q.Set(k, fmt.Sprint(v))
		}
		u.RawQuery = q.Encode()
	}
	var (
		body        io.Reader
		contentType string
		wantJSON    bool
	)
	switch j := opts["json"].(type) {
	case bool:
		wantJSON = j
	case nil:
	default:
		b, err := json.Marshal(j)
		if err != nil {
			return nil, nil, err
		}
		body, contentType, wantJSON = strings.NewReader(string(b)), "application/json", true
	}
	if s, ok := opts["body"].(string); ok {
		body = strings.NewReader(s)
	}
	if f, ok := opts["form"].(map[string]any); ok {
		v := url.Values{}
		for k, x := range f {
			v.Set(k, fmt.Sprint(x))
		}
		body, contentType = strings.NewReader(v.Encode()), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if h, ok := opts["headers"].(map[string]any); ok {
		for k, v := range h {
			req.Header.Set(k, fmt.Sprint(v))
		}
	}
	if a, ok := opts["auth"].(map[string]any); ok {
		req.SetBasicAuth(str(a, "username", "user"), str(a, "password", "pass"))
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, err
	}
	var bodyV goja.Value = vm.ToValue(string(raw))
	if wantJSON {
		var parsed any
		if json.Unmarshal(raw, &parsed) == nil {
			bodyV = vm.ToValue(parsed)
		}
	}
	headers := map[string]any{}
	for k := range resp.Header {
		headers[strings.ToLower(k)] = resp.Header.Get(k)
	}
	respObj := vm.NewObject()
	_ = respObj.Set("statusCode", resp.StatusCode)
	_ = respObj.Set("headers", headers)
	_ = respObj.Set("body", bodyV)
	return respObj, bodyV, nil
}
