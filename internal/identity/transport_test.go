package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Tenants that trust the same CA bundle share one trust pool (a copy of the
// system roots each was 35 MB at 1,000 tenants), and each transport still
// trusts exactly its own bundle.
func TestTransportsShareTheTrustPoolOfTheSameBundle(t *testing.T) {
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }
	// a has httptest's own certificate, b one made here: two CAs.
	a := httptest.NewTLSServer(http.HandlerFunc(ok))
	defer a.Close()
	b := httptest.NewUnstartedServer(http.HandlerFunc(ok))
	b.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t, "example.com")}}
	b.StartTLS()
	defer b.Close()
	bundle := func(s *httptest.Server) []byte {
		der := s.Certificate().Raw
		if s.TLS != nil && len(s.TLS.Certificates) > 0 {
			der = s.TLS.Certificates[0].Certificate[0]
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	// httptest certificates are for example.com and 127.0.0.1.
	cfg := func(s *httptest.Server) Config {
		return Config{Domain: "example.com", DialAddress: s.Listener.Addr().String(), CABundle: bundle(s)}
	}
	tr1, err := newTransport(cfg(a))
	if err != nil {
		t.Fatal(err)
	}
	tr2, err := newTransport(cfg(a))
	if err != nil {
		t.Fatal(err)
	}
	tr3, err := newTransport(cfg(b))
	if err != nil {
		t.Fatal(err)
	}
	if tr1.TLSClientConfig.RootCAs != tr2.TLSClientConfig.RootCAs {
		t.Error("two tenants with the same CA bundle hold two trust pools")
	}
	if tr1.TLSClientConfig.RootCAs == tr3.TLSClientConfig.RootCAs {
		t.Error("tenants with different CA bundles share a trust pool")
	}
	get := func(tr *http.Transport, s *httptest.Server) error {
		resp, err := (&http.Client{Transport: tr}).Get("https://example.com/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(tr2, a); err != nil {
		t.Errorf("a shared pool does not trust its bundle: %v", err)
	}
	if err := get(tr3, b); err != nil {
		t.Errorf("the second bundle is not trusted: %v", err)
	}
	// tr1 dials a; a transport trusting only b's bundle must refuse a.
	wrong := cfg(a)
	wrong.CABundle = bundle(b)
	tr4, err := newTransport(wrong)
	if err != nil {
		t.Fatal(err)
	}
	if err := get(tr4, a); err == nil {
		t.Error("a transport trusted a server whose CA is not in its bundle")
	}
	if _, err := newTransport(Config{Domain: "example.com", CABundle: []byte("not PEM")}); err == nil {
		t.Error("a bundle without a certificate was accepted")
	}
}

// selfSigned is a certificate for name that is its own CA.
func selfSigned(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}
