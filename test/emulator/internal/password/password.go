// Package password hashes passwords and checks them against a connection's
// password policy.
package password

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"
	"unicode"
)

// iterations is low on purpose: this is a test platform and tests hash many
// passwords; the format still never stores a password in the clear.
const iterations = 2048

// Hash returns "pbkdf2-sha256$iter$salt$key".
func Hash(pw string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	k, _ := pbkdf2.Key(sha256.New, pw, salt, iterations, 32)
	return "pbkdf2-sha256$2048$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(k)
}

// Check reports whether pw matches hash.
func Check(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" || parts[1] != "2048" {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[2])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	got, _ := pbkdf2.Key(sha256.New, pw, salt, iterations, len(want))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// Policy is a connection's passwordPolicy plus its minimum length override.
type Policy struct {
	Name      string // none|low|fair|good|excellent; "" means the platform default, good
	MinLength int    // password_complexity_options.min_length, 0 when unset
}

// Check returns "" when pw satisfies the policy, or a rule a person can act on.
func (p Policy) Check(pw string) string {
	name := p.Name
	if name == "" {
		name = "good"
	}
	min, kinds := 1, 0
	switch name {
	case "low":
		min = 6
	case "fair":
		min, kinds = 8, 3 // lower, upper, digits: all three
	case "good":
		min, kinds = 8, 3 // three of four
	case "excellent":
		min, kinds = 10, 3
	}
	if p.MinLength > 0 {
		min = p.MinLength
	}
	if len([]rune(pw)) < min {
		return "At least " + strconv.Itoa(min) + " characters in length"
	}
	var lower, upper, digit, special bool
	for _, r := range pw {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		default:
			special = true
		}
	}
	switch name {
	case "fair":
		if !(lower && upper && digit) {
			return "Lower case letters (a-z), upper case letters (A-Z) and numbers (0-9)"
		}
	case "good", "excellent":
		n := 0
		for _, b := range []bool{lower, upper, digit, special} {
			if b {
				n++
			}
		}
		if n < kinds {
			return "At least 3 of the following 4 types of characters: lower case letters (a-z), upper case letters (A-Z), numbers (i.e. 0-9), special characters (e.g. !@#$%^&*)"
		}
	}
	if name == "excellent" {
		rs := []rune(pw)
		for i := 2; i < len(rs); i++ {
			if rs[i] == rs[i-1] && rs[i] == rs[i-2] {
				return "No more than 2 identical characters in a row (e.g., \"aaa\" not allowed)"
			}
		}
	}
	return ""
}
