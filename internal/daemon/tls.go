package daemon

import (
	"crypto/tls"
	"fmt"
)

// loadTLS reads the certificate and key otad serves HTTPS with; both empty
// means plain HTTP (nil). The files are read once: a renewed certificate
// takes effect on restart.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("%s and %s go together: set both for HTTPS, or neither for plain HTTP", keyTLSCert, keyTLSKey)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s (PEM files, the key matching the certificate): %w", certFile, keyFile, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}, nil
}
