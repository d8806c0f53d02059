package console

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/baton-sync/baton/internal/atomicfile"
)

// The console's self-signed certificate and its key, in the baton home.
const (
	CertFile = "gui-cert.pem"
	KeyFile  = "gui-key.pem"
)

// Certificate lifetime: made for certValidity, made again when less than
// certRenewBefore is left or the listen host is not among its names.
const (
	certValidity    = 365 * 24 * time.Hour
	certRenewBefore = 30 * 24 * time.Hour
)

// loadOrMakeCert returns the console's TLS certificate kept in home, making
// a new self-signed one (ECDSA P-256) when there is none, it expires within
// certRenewBefore, or it does not name host.
func loadOrMakeCert(home, host string, now time.Time, rnd io.Reader) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(home, CertFile), filepath.Join(home, KeyFile)
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	switch {
	case err == nil:
		if certFits(c.Leaf, host, now) {
			return c, nil
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return tls.Certificate{}, fmt.Errorf("loading the console certificate (delete %s and %s to make new ones): %w", certPath, keyPath, err)
	}
	certPEM, keyPEM, err := makeCert(host, now, rnd)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("making the console certificate: %w", err)
	}
	if err := atomicfile.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("writing the console key: %w", err)
	}
	if err := atomicfile.WriteFile(certPath, certPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("writing the console certificate: %w", err)
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// certFits reports whether leaf names host and is valid for a while yet.
func certFits(leaf *x509.Certificate, host string, now time.Time) bool {
	if leaf == nil || now.Before(leaf.NotBefore) || now.Add(certRenewBefore).After(leaf.NotAfter) {
		return false
	}
	return leaf.VerifyHostname(host) == nil
}

// certNames are the names the certificate holds: host and loopback.
func certNames(host string) (dns []string, ips []net.IP) {
	dns = []string{"localhost"}
	ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if ip := net.ParseIP(host); ip != nil {
		if !slices.ContainsFunc(ips, ip.Equal) && !ip.IsUnspecified() {
			ips = append(ips, ip)
		}
	} else if host != "" && host != "localhost" {
		dns = append(dns, host)
	}
	return dns, ips
}

func makeCert(host string, now time.Time, rnd io.Reader) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randSerial(rnd)
	if err != nil {
		return nil, nil, err
	}
	dns, ips := certNames(host)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "baton console"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: it is its own root for clients that pin it
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rnd, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

func randSerial(rnd io.Reader) (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}

// CertPool returns a pool holding home's console certificate, for a client
// that pins it (baton gui).
func CertPool(home string) (*x509.CertPool, error) {
	b, err := os.ReadFile(filepath.Join(home, CertFile))
	if err != nil {
		return nil, fmt.Errorf("reading the console certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("console certificate %s holds no certificate", filepath.Join(home, CertFile))
	}
	return pool, nil
}
