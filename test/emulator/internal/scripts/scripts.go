// Package scripts runs a custom database connection's action scripts in an
// embedded JavaScript engine (goja) with the platform's conventions: the
// script is one function whose last argument is a Node-style callback, a
// global `configuration` object, the error types WrongUsernameOrPasswordError
// and ValidationError, `require('request')` for calling a legacy web service
// (synchronously, over HTTP with Basic Auth or not), and a time limit per run.
package scripts

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// Names of the scripts a database connection may carry, in the platform's
// `customScripts` keys.
var Names = []string{"login", "get_user", "create", "verify", "change_password", "delete", "change_email"}

// DefaultTimeout is the platform's limit for one run of a script.
const DefaultTimeout = 20 * time.Second

// WrongCredentialsError is what a script reports with
// `callback(new WrongUsernameOrPasswordError(email, msg))`.
type WrongCredentialsError struct{ Message string }

func (e *WrongCredentialsError) Error() string { return "wrong username or password: " + e.Message }

// ValidationError is what a script reports with
// `callback(new ValidationError(code, msg))`.
type ValidationError struct{ Code, Message string }

func (e *ValidationError) Error() string { return e.Code + ": " + e.Message }

// ErrTimeout means the run exceeded its time limit.
var ErrTimeout = errors.New("script execution timed out")

// ErrNoCallback means the script returned without calling its callback and
// left nothing running that could call it later.
var ErrNoCallback = errors.New("script returned without calling callback")

// prelude defines the platform's globals every script sees.
const prelude = `
function WrongUsernameOrPasswordError(user, message) {
  this.name = 'WrongUsernameOrPasswordError'; this.user = user;
  this.message = message || 'Wrong email or password.';
}
WrongUsernameOrPasswordError.prototype = Object.create(Error.prototype);
function ValidationError(code, message) {
  this.name = 'ValidationError'; this.code = code; this.message = message || code;
}
ValidationError.prototype = Object.create(Error.prototype);
function UnauthorizedError(message) { this.name = 'UnauthorizedError'; this.message = message; }
UnauthorizedError.prototype = Object.create(Error.prototype);
`

// Runner runs scripts. The zero value is not usable: use New.
type Runner struct {
	timeout time.Duration
	http    *http.Client

	mu       sync.Mutex
	programs map[[32]byte]*goja.Program
	prelude  *goja.Program
}

// New returns a Runner with the time limit per run and the HTTP client that
// `require('request')` uses (nil: a client that only reaches loopback).
func New(timeout time.Duration, client *http.Client) *Runner {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if client == nil {
		client = LoopbackClient()
	}
	return &Runner{timeout: timeout, http: client, programs: map[[32]byte]*goja.Program{},
		prelude: goja.MustCompile("prelude.js", prelude, false)}
}

// Check compiles src as the script called name and returns the syntax error,
// if any, in a form fit for an API answer.
func Check(name, src string) error {
	_, err := compile(name, src)
	return err
}

func compile(name, src string) (*goja.Program, error) {
	// The platform's scripts are function declarations; wrapping one in
	// parentheses makes it an expression whose value is the function.
	p, err := goja.Compile(name+".js", "(\n"+src+"\n)", false)
	if err != nil {
		var se *goja.CompilerSyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%s", se.Error())
		}
		return nil, err
	}
	return p, nil
}

func (r *Runner) program(name, src string) (*goja.Program, error) {
	key := sha256.Sum256([]byte(name + "\x00" + src))
	r.mu.Lock()
	p, ok := r.programs[key]
	r.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := compile(name, src)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.programs[key] = p
	r.mu.Unlock()
	return p, nil
}

// Run calls the script's function with args and a callback, and returns
// what the script passed as the callback's second argument, exported to Go
// (nil for null or undefined). The callback's first argument becomes a
// *WrongCredentialsError, *ValidationError or a plain error.
func (r *Runner) Run(ctx context.Context, name, src string, configuration map[string]string, args ...any) (any, error) {
	prog, err := r.program(name, src)
	if err != nil {
		return nil, fmt.Errorf("compile %s script: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()

	vm := goja.New()
	vm.SetFieldNameMapper(goja.TagFieldNameMapper("json", true))
	stop := context.AfterFunc(ctx, func() { vm.Interrupt(ErrTimeout) })
	defer stop()

	if _, err := vm.RunProgram(r.prelude); err != nil {
		return nil, err
	}
	cfg := vm.NewObject()
	for k, v := range configuration {
		_ = cfg.Set(k, v)
	}
	_ = vm.Set("configuration", cfg)
	_ = vm.Set("require", func(call goja.FunctionCall) goja.Value {
		switch mod := call.Argument(0).String(); mod {
		case "request":
			return r.requestModule(ctx, vm)
		default:
			panic(vm.NewGoError(fmt.Errorf("Cannot find module '%s'", mod)))
		}
	})
	console := vm.NewObject()
	noop := func(goja.FunctionCall) goja.Value { return goja.Undefined() }
	// Script output is dropped: it may print the configuration's secrets.
	_ = console.Set("log", noop)
	_ = console.Set("error", noop)
	_ = vm.Set("console", console)

	fnVal, err := vm.RunProgram(prog)
	if err != nil {
		return nil, runErr(err)
	}
	fn, ok := goja.AssertFunction(fnVal)
	if !ok {
		return nil, fmt.Errorf("%s script is not a function", name)
	}

	var (
		called bool
		result any
		cbErr  error
	)
	cb := vm.ToValue(func(call goja.FunctionCall) goja.Value {
		if called {
			return goja.Undefined()
		}
		called = true
		cbErr = scriptError(vm, call.Argument(0))
		if v := call.Argument(1); !goja.IsUndefined(v) && !goja.IsNull(v) {
			result = v.Export()
		}
		return goja.Undefined()
	})
	jsArgs := make([]goja.Value, 0, len(args)+1)
	for _, a := range args {
		jsArgs = append(jsArgs, vm.ToValue(a))
	}
	jsArgs = append(jsArgs, cb)
	_, err = fn(goja.Undefined(), jsArgs...)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// Whatever the script saw (an interrupt, a failed request), the run
		// is over because its time is.
		return nil, ErrTimeout
	}
	if err != nil && !called {
		return nil, runErr(err)
	}
	if !called {
		return nil, ErrNoCallback
	}
	return result, cbErr
}

func runErr(err error) error {
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		return ErrTimeout
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		return fmt.Errorf("script error: %s", ex.Value().String())
	}
	return err
}

// scriptError turns the callback's first argument into a Go error.
func scriptError(vm *goja.Runtime, v goja.Value) error {
	if goja.IsUndefined(v) || goja.IsNull(v) {
		return nil
	}
	obj := v.ToObject(vm)
	str := func(k string) string {
		x := obj.Get(k)
		if x == nil || goja.IsUndefined(x) || goja.IsNull(x) {
			return ""
		}
		return x.String()
	}
	switch str("name") {
	case "WrongUsernameOrPasswordError":
		return &WrongCredentialsError{Message: str("message")}
	case "ValidationError":
		return &ValidationError{Code: str("code"), Message: str("message")}
	}
	if m := str("message"); m != "" {
		return errors.New(m)
	}
	return errors.New(strings.TrimSpace(v.String()))
}
