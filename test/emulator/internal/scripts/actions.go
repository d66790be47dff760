package scripts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/dop251/goja"
)

// Actions are Node modules: the code assigns its handlers to `exports`
// (`exports.onExecutePostLogin = async (event, api) => {...}`). The
// emulator runs one as Node would load a CommonJS file: wrapped in a
// function of (exports, require, module, __filename, __dirname). The
// wrapper opens on the code's first line, so error positions match the
// code as written.
const (
	moduleHead = "(function (exports, require, module, __filename, __dirname) {"
	moduleTail = "\n})"
)

// CheckAction compiles an action's code and returns the syntax error, if
// any, as the build error the platform reports.
func CheckAction(code string) error {
	_, err := compileAction(code)
	return err
}

func compileAction(code string) (*goja.Program, error) {
	p, err := goja.Compile("action.js", moduleHead+code+moduleTail, false)
	if err != nil {
		var se *goja.CompilerSyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%s", se.Error())
		}
		return nil, err
	}
	return p, nil
}

// The handlers of the post-login trigger (v3).
const (
	OnExecutePostLogin  = "onExecutePostLogin"
	OnContinuePostLogin = "onContinuePostLogin"
)

// ActionRun is one run of one handler of an action.
type ActionRun struct {
	// Code is the deployed version's code.
	Code string
	// Handler is the export to call, e.g. OnExecutePostLogin.
	Handler string
	// Event is the handler's event, JSON-shaped (it reaches the code as
	// plain JavaScript objects).
	Event map[string]any
	// HTTP is what the global fetch uses.
	HTTP *http.Client
}

// ActionOutcome is what a handler asked of the platform through `api`.
type ActionOutcome struct {
	// Ran is false when the code does not export the handler.
	Ran bool
	// Denied and DenyReason come from api.access.deny(reason).
	Denied     bool
	DenyReason string
	// Redirect is the URL of api.redirect.sendUserTo(url, {query}), the
	// query applied.
	Redirect string
	// IDTokenClaims and AccessTokenClaims come from
	// api.idToken/accessToken.setCustomClaim(name, value).
	IDTokenClaims, AccessTokenClaims map[string]any
	// UserMetadata and AppMetadata come from
	// api.user.setUserMetadata/setAppMetadata(name, value).
	UserMetadata, AppMetadata map[string]any
}

// ActionError is an action that threw (or whose promise rejected): Message
// is the error's message, as the platform reports it.
type ActionError struct{ Message string }

func (e *ActionError) Error() string { return "action failed: " + e.Message }

// RunAction loads the action's module and awaits its handler with (event,
// api). The run has the runner's time limit; fetch is synchronous under the
// hood, so a handler's promise settles before the call returns unless it
// waits on something that never comes, which fails the run.
func (r *Runner) RunAction(ctx context.Context, run ActionRun) (ActionOutcome, error) {
	out := ActionOutcome{IDTokenClaims: map[string]any{}, AccessTokenClaims: map[string]any{}, UserMetadata: map[string]any{}, AppMetadata: map[string]any{}}
	prog, err := compileAction(run.Code)
	if err != nil {
		return out, fmt.Errorf("compile action: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	vm := goja.New()
	stop := context.AfterFunc(ctx, func() { vm.Interrupt(ErrTimeout) })
	defer stop()

	console := vm.NewObject()
	noop := func(goja.FunctionCall) goja.Value { return goja.Undefined() }
	// Output is dropped: an action may print its secrets.
	for _, k := range []string{"log", "info", "warn", "error", "debug"} {
		_ = console.Set(k, noop)
	}
	_ = vm.Set("console", console)
	client := run.HTTP
	if client == nil {
		client = r.http
	}
	_ = vm.Set("fetch", func(call goja.FunctionCall) goja.Value { return fetch(ctx, vm, client, call) })

	wrapper, err := vm.RunProgram(prog)
	if err != nil {
		return out, runActionErr(ctx, err)
	}
	load, _ := goja.AssertFunction(wrapper)
	exports, module := vm.NewObject(), vm.NewObject()
	_ = module.Set("exports", exports)
	require := vm.ToValue(func(call goja.FunctionCall) goja.Value {
		mod := call.Argument(0).String()
		panic(vm.NewGoError(fmt.Errorf("Cannot find module '%s' (the emulator installs no npm package)", mod)))
	})
	if _, err := load(goja.Undefined(), exports, require, module, vm.ToValue("/action.js"), vm.ToValue("/")); err != nil {
		return out, runActionErr(ctx, err)
	}
	handler, ok := goja.AssertFunction(module.Get("exports").ToObject(vm).Get(run.Handler))
	if !ok {
		return out, nil
	}
	out.Ran = true

	eventJSON, err := json.Marshal(run.Event)
	if err != nil {
		return out, err
	}
	parse, _ := goja.AssertFunction(vm.Get("JSON").ToObject(vm).Get("parse"))
	event, err := parse(goja.Undefined(), vm.ToValue(string(eventJSON)))
	if err != nil {
		return out, err
	}
	res, err := handler(goja.Undefined(), event, actionAPI(vm, &out))
	if err != nil {
		return out, runActionErr(ctx, err)
	}
	if p, ok := res.Export().(*goja.Promise); ok {
		switch p.State() {
		case goja.PromiseStateRejected:
			return out, &ActionError{Message: reasonMessage(vm, p.Result())}
		case goja.PromiseStatePending:
			if ctx.Err() != nil {
				return out, ErrTimeout
			}
			return out, &ActionError{Message: "the handler's promise never settled (it awaits something the emulator does not provide)"}
		}
	}
	return out, nil
}

func runActionErr(ctx context.Context, err error) error {
	var ie *goja.InterruptedError
	if errors.As(err, &ie) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrTimeout
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		if obj, ok := ex.Value().(*goja.Object); ok {
			if m := obj.Get("message"); m != nil && !goja.IsUndefined(m) {
				return &ActionError{Message: m.String()}
			}
		}
		return &ActionError{Message: ex.Value().String()}
	}
	return &ActionError{Message: err.Error()}
}

// reasonMessage is a rejection's message: an Error's message, or the value.
func reasonMessage(vm *goja.Runtime, v goja.Value) string {
	if obj, ok := v.(*goja.Object); ok {
		if m := obj.Get("message"); m != nil && !goja.IsUndefined(m) {
			return m.String()
		}
	}
	if v == nil || goja.IsUndefined(v) {
		return "undefined"
	}
	return v.String()
}

// actionAPI is the post-login `api` object; its methods record into out
// and return the api, so calls chain as on the platform.
func actionAPI(vm *goja.Runtime, out *ActionOutcome) *goja.Object {
	api := vm.NewObject()
	section := func(name string, methods map[string]func(goja.FunctionCall)) {
		o := vm.NewObject()
		for k, fn := range methods {
			_ = o.Set(k, func(call goja.FunctionCall) goja.Value { fn(call); return api })
		}
		_ = api.Set(name, o)
	}
	claim := func(into map[string]any) func(goja.FunctionCall) {
		return func(call goja.FunctionCall) { into[call.Argument(0).String()] = call.Argument(1).Export() }
	}
	section("access", map[string]func(goja.FunctionCall){
		"deny": func(call goja.FunctionCall) {
			out.Denied, out.DenyReason = true, call.Argument(0).String()
			if goja.IsUndefined(call.Argument(0)) {
				out.DenyReason = ""
			}
		},
	})
	section("redirect", map[string]func(goja.FunctionCall){
		"sendUserTo": func(call goja.FunctionCall) {
			u, err := url.Parse(call.Argument(0).String())
			if err != nil || !u.IsAbs() {
				panic(vm.NewTypeError("api.redirect.sendUserTo: not an absolute URL: %s", call.Argument(0).String()))
			}
			if opts, ok := call.Argument(1).Export().(map[string]any); ok {
				if query, ok := opts["query"].(map[string]any); ok {
					q := u.Query()
					for k, v := range query {
						q.Set(k, fmt.Sprint(v))
					}
					u.RawQuery = q.Encode()
				}
			}
			out.Redirect = u.String()
		},
	})
	section("idToken", map[string]func(goja.FunctionCall){"setCustomClaim": claim(out.IDTokenClaims)})
	section("accessToken", map[string]func(goja.FunctionCall){"setCustomClaim": claim(out.AccessTokenClaims)})
	section("user", map[string]func(goja.FunctionCall){
		"setUserMetadata": claim(out.UserMetadata),
		"setAppMetadata":  claim(out.AppMetadata),
	})
	return api
}

// fetch is the WHATWG fetch subset actions use: fetch(url, {method,
// headers, body}) resolving to a Response with status, statusText, ok,
// url, headers.get(name), json() and text(). The request is made before
// fetch returns; a network failure rejects with a TypeError("fetch failed").
func fetch(ctx context.Context, vm *goja.Runtime, client *http.Client, call goja.FunctionCall) goja.Value {
	promise, resolve, reject := vm.NewPromise()
	fail := func(err error) goja.Value {
		e := vm.NewTypeError("fetch failed: %s", err.Error())
		_ = reject(e)
		return vm.ToValue(promise)
	}
	target := call.Argument(0).String()
	method, body := "GET", ""
	headers := http.Header{}
	if init, ok := call.Argument(1).(*goja.Object); ok {
		if m := init.Get("method"); m != nil && !goja.IsUndefined(m) {
			method = strings.ToUpper(m.String())
		}
		if b := init.Get("body"); b != nil && !goja.IsUndefined(b) && !goja.IsNull(b) {
			body = b.String()
		}
		if h, ok := init.Get("headers").(*goja.Object); ok {
			for _, k := range h.Keys() {
				headers.Set(k, h.Get(k).String())
			}
		}
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
		if headers.Get("Content-Type") == "" {
			headers.Set("Content-Type", "text/plain;charset=UTF-8")
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return fail(err)
	}
	req.Header = headers
	resp, err := client.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fail(err)
	}
	res := vm.NewObject()
	_ = res.Set("status", resp.StatusCode)
	_ = res.Set("statusText", http.StatusText(resp.StatusCode))
	_ = res.Set("ok", resp.StatusCode >= 200 && resp.StatusCode < 300)
	_ = res.Set("url", target)
	hdrs := vm.NewObject()
	_ = hdrs.Set("get", func(c goja.FunctionCall) goja.Value {
		v := resp.Header.Values(c.Argument(0).String())
		if len(v) == 0 {
			return goja.Null()
		}
		return vm.ToValue(strings.Join(v, ", "))
	})
	_ = res.Set("headers", hdrs)
	// settled makes a method answering a settled promise: v's value, or
	// its rejection reason when that is not nil.
	settled := func(v func() (value, reason goja.Value)) func(goja.FunctionCall) goja.Value {
		return func(goja.FunctionCall) goja.Value {
			p, ok, ko := vm.NewPromise()
			if x, reason := v(); reason != nil {
				_ = ko(reason)
			} else {
				_ = ok(x)
			}
			return vm.ToValue(p)
		}
	}
	_ = res.Set("text", settled(func() (goja.Value, goja.Value) { return vm.ToValue(string(raw)), nil }))
	_ = res.Set("json", settled(func() (goja.Value, goja.Value) {
		parse, _ := goja.AssertFunction(vm.Get("JSON").ToObject(vm).Get("parse"))
		v, err := parse(goja.Undefined(), vm.ToValue(string(raw)))
		if err != nil {
			var ex *goja.Exception
			if errors.As(err, &ex) {
				return nil, ex.Value()
			}
			return nil, vm.NewGoError(err)
		}
		return v, nil
	}))
	_ = resolve(res)
	return vm.ToValue(promise)
}
