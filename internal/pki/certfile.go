package pki

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxCertFileBytes bounds a PEM certificate file (a trust bundle or a
// chain); a larger file is refused rather than read into memory.
const MaxCertFileBytes = 4 << 20

// ReadCertificates reads every certificate of a PEM file, in order. The
// file must hold at least one certificate and nothing else: a private key
// or any other block in a trust bundle or chain file is a mistake worth
// stopping for, not skipping. Errors name the file.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	return readCertificates(path, false)
}

// ReadChain reads the certificates of a certificate chain file that goes
// with a private key (a server's or a client's cert_file), in order, leaf
// first. As tls.LoadX509KeyPair does, it accepts a file that also holds
// the private key: a "PRIVATE KEY" or "… PRIVATE KEY" block is skipped,
// never parsed. Any other block is an error, and so is a file without a
// certificate. Trust bundles are read with ReadCertificates. Errors name
// the file.
func ReadChain(path string) ([]*x509.Certificate, error) {
	return readCertificates(path, true)
}

// isKeyBlock reports whether a PEM block type is a private key's, as
// tls.X509KeyPair recognises them.
func isKeyBlock(typ string) bool {
	return typ == "PRIVATE KEY" || strings.HasSuffix(typ, " PRIVATE KEY")
}

// ReadPEMFile reads a PEM file of certificates (and perhaps their key),
// refusing one larger than MaxCertFileBytes rather than reading it into
// memory. Errors name the file.
func ReadPEMFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read certificates: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxCertFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read certificates %s: %w", path, err)
	}
	if len(data) > MaxCertFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxCertFileBytes)
	}
	return data, nil
}

// readCertificates is ReadCertificates, or ReadChain with keyOK.
func readCertificates(path string, keyOK bool) ([]*x509.Certificate, error) {
	data, err := ReadPEMFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if keyOK && isKeyBlock(b.Type) {
			continue
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: unexpected PEM block %q where only certificates belong", path, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate in %s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return out, nil
}

// SplitManaged splits the PEM of a file the gateway persisted for a
// certificate it manages (its private key, then the chain) into the key's
// block (nil if there is none) and the certificates' blocks, in order. Any
// other block is an error.
func SplitManaged(data []byte) (key *pem.Block, chain []*pem.Block, err error) {
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return key, chain, nil
		}
		switch b.Type {
		case "PRIVATE KEY":
			key = b
		case "CERTIFICATE":
			chain = append(chain, b)
		default:
			return nil, nil, fmt.Errorf("unexpected PEM block %q", b.Type)
		}
	}
}
