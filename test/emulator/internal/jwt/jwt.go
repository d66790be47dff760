// Package jwt signs and verifies the RS256 JSON Web Tokens the emulator issues
// and publishes the matching JSON Web Key Set.
package jwt

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"strings"
	"sync"
	"time"
)

// KeyFile is the signing key's file name inside the data directory.
const KeyFile = "signing-key.pem"

// Errors Verify returns; the server maps them to the platform's 401 messages.
var (
	ErrMalformed = errors.New("invalid token")
	ErrSignature = errors.New("invalid signature")
	ErrExpired   = errors.New("expired token")
)

// Claims is a decoded token payload.
type Claims map[string]any

// String returns a string claim or "".
func (c Claims) String(name string) string {
	s, _ := c[name].(string)
	return s
}

// Audiences returns the aud claim as a list (it may be a string or an array).
func (c Claims) Audiences() []string {
	switch v := c["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, a := range v {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Expiry returns the exp claim.
func (c Claims) Expiry() time.Time {
	f, _ := c["exp"].(float64)
	return time.Unix(int64(f), 0)
}

// Signer holds the RSA key and a cache of verified tokens: verifying RS256
// costs tens of microseconds, and the same token arrives on every request.
type Signer struct {
	key *rsa.PrivateKey
	kid string

	mu       sync.RWMutex
	verified map[string]Claims
}

// LoadOrCreate reads the PEM key at path or creates a 2048-bit key there.
func LoadOrCreate(path string) (*Signer, error) {
	if b, err := os.ReadFile(path); err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, errors.New("jwt: signing key is not PEM")
		}
		k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		return newSigner(k), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b, err := GenerateKeyPEM()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	return LoadOrCreate(path)
}

// GenerateKeyPEM returns a new 2048-bit RSA signing key in PEM. Test helpers
// generate one per process and copy it into each data directory, because
// generating it takes most of a second on a small machine.
func GenerateKeyPEM() ([]byte, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
}

func newSigner(k *rsa.PrivateKey) *Signer {
	sum := sha256.Sum256(x509.MarshalPKCS1PublicKey(&k.PublicKey))
	return &Signer{key: k, kid: b64(sum[:12]), verified: map[string]Claims{}}
}

// KeyID is the kid of the signing key.
func (s *Signer) KeyID() string { return s.kid }

// Sign returns a compact RS256 JWT for claims.
func (s *Signer) Sign(claims map[string]any) (string, error) {
	hdr, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": s.kid})
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64(hdr) + "." + b64(body)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return input + "." + b64(sig), nil
}

// Verify checks the signature, algorithm, kid and expiry of token against now.
func (s *Signer) Verify(token string, now time.Time) (Claims, error) {
	s.mu.RLock()
	c, ok := s.verified[token]
	s.mu.RUnlock()
	if !ok {
		var err error
		if c, err = s.verify(token); err != nil {
			return nil, err
		}
		s.mu.Lock()
		if len(s.verified) > 50000 { // bound memory; a full clear is cheap and rare
			s.verified = map[string]Claims{}
		}
		s.verified[token] = c
		s.mu.Unlock()
	}
	if !now.Before(c.Expiry()) {
		return nil, ErrExpired
	}
	return c, nil
}

func (s *Signer) verify(token string) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, ErrMalformed
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	bb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, ErrMalformed
	}
	var hdr struct{ Alg, Kid string }
	if json.Unmarshal(hb, &hdr) != nil || hdr.Alg != "RS256" || hdr.Kid != s.kid {
		return nil, ErrSignature
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return nil, ErrSignature
	}
	var c Claims
	if json.Unmarshal(bb, &c) != nil {
		return nil, ErrMalformed
	}
	return c, nil
}

// JWKS returns the key set document served at /.well-known/jwks.json.
func (s *Signer) JWKS() map[string]any {
	pub := s.key.PublicKey
	return map[string]any{"keys": []any{map[string]any{
		"kty": "RSA",
		"use": "sig",
		"alg": "RS256",
		"kid": s.kid,
		"n":   b64(pub.N.Bytes()),
		"e":   b64(big.NewInt(int64(pub.E)).Bytes()),
	}}}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
