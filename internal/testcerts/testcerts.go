// Package testcerts makes a throwaway certificate authority with a server
// certificate for 127.0.0.1/localhost and client certificates, as files
// (for kcat and confluent-kafka-python) and as tls.Configs (for Go
// clients), so that tests of TLS listeners need no fixtures.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Set is a CA and the certificates it signed, written under Dir.
type Set struct {
	Dir        string
	CAFile     string // PEM CA certificate
	ServerCert string // PEM server certificate (127.0.0.1, ::1, localhost)
	ServerKey  string // PEM server key
	ca         *x509.Certificate
	caKey      *ecdsa.PrivateKey
	pool       *x509.CertPool
}

// New makes a CA and a server certificate in dir.
func New(dir string) (*Set, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sluice test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	s := &Set{Dir: dir, ca: ca, caKey: caKey, pool: x509.NewCertPool()}
	s.pool.AddCert(ca)
	s.CAFile = filepath.Join(dir, "ca.pem")
	if err := writePEM(s.CAFile, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	s.ServerCert, s.ServerKey, err = s.issue("server", pkix.Name{CommonName: "localhost"}, true)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Client issues a client certificate with the given subject and returns
// its certificate and key files.
func (s *Set) Client(name string, subject pkix.Name) (certFile, keyFile string, err error) {
	return s.issue(name, subject, false)
}

func (s *Set) issue(name string, subject pkix.Name, server bool) (string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca, &key.PublicKey, s.caKey)
	if err != nil {
		return "", "", err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	cf, kf := filepath.Join(s.Dir, name+".pem"), filepath.Join(s.Dir, name+"-key.pem")
	if err := writePEM(cf, "CERTIFICATE", der); err != nil {
		return "", "", err
	}
	if err := writePEM(kf, "EC PRIVATE KEY", kb); err != nil {
		return "", "", err
	}
	return cf, kf, nil
}

// ServerTLS is the server's tls.Config; with mutual, client certificates
// signed by the CA are required.
func (s *Set) ServerTLS(mutual bool) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(s.ServerCert, s.ServerKey)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if mutual {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, s.pool
	}
	return c, nil
}

// ClientTLS is a client tls.Config trusting the CA, presenting the given
// client certificate files when not empty.
func (s *Set) ClientTLS(certFile, keyFile string) (*tls.Config, error) {
	c := &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
