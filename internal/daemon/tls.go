package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval is how often, at most, a handshake looks at the
// certificate files for a renewal.
const certCheckInterval = 10 * time.Second

// loadTLS reads the certificate and key otad serves HTTPS with; both empty
// means plain HTTP (nil). A renewed certificate is picked up without a
// restart (see certReloader).
func loadTLS(certFile, keyFile string, log *slog.Logger) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("%s and %s go together: set both for HTTPS, or neither for plain HTTP", keyTLSCert, keyTLSKey)
	}
	r, err := newCertReloader(certFile, keyFile, log, time.Now)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
	}, nil
}

// certReloader serves the certificate of two PEM files and reads them
// again when either changes on disk (looked at on a handshake, at most
// every certCheckInterval), so a certificate renewed in place (certbot, a
// mounted secret) takes effect without a restart. A pair that does not
// load, such as a certificate written before its key, keeps the old
// certificate in service and is logged once; it is tried again when the
// files change again.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   fileStamp // of the files cert was loaded from, or last failed
	checked time.Time
}

// fileStamp identifies a version of the two files.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func stampOf(certFile, keyFile string) (fileStamp, error) {
	c, err := os.Stat(certFile)
	if err != nil {
		return fileStamp{}, err
	}
	k, err := os.Stat(keyFile)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}

// newCertReloader loads the pair; a failure here fails otad's start.
func newCertReloader(certFile, keyFile string, log *slog.Logger, now func() time.Time) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, now: now}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) load() error {
	// Stamped first: a change while loading is then seen as a change.
	st, err := stampOf(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s (PEM files, the key matching the certificate): %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp, r.checked = &cert, st, r.now()
	return nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= certCheckInterval {
		r.checked = now
		r.reloadIfChanged()
	}
	return r.cert, nil
}

func (r *certReloader) reloadIfChanged() {
	st, err := stampOf(r.certFile, r.keyFile)
	if err != nil || st == r.stamp {
		return // files being replaced, or unchanged
	}
	r.stamp = st
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.log.Error("TLS certificate changed on disk but does not load; still serving the previous one",
			"cert", r.certFile, "key", r.keyFile, "err", err)
		return
	}
	r.cert = &cert
	attrs := []any{"cert", r.certFile}
	if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
		attrs = append(attrs, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	r.log.Info("TLS certificate reloaded", attrs...)
}
