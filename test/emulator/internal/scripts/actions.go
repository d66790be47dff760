package scripts

import (
	"errors"
	"fmt"

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
