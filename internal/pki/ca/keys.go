package ca

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/crypto/scrypt"
)

// KeyType names the algorithm of the CA's keys.
type KeyType string

// Key types of a CA.
const (
	KeyECDSAP256 KeyType = "ecdsa"   // ECDSA on P-256, the default
	KeyEd25519   KeyType = "ed25519" // Ed25519 (no OCSP responder: x/crypto/ocsp cannot sign with it)
	KeyRSA3072   KeyType = "rsa3072" // RSA, 3072 bits
)

func generateKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case "", KeyECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case KeyRSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, fmt.Errorf("key type %q: want %s, %s or %s", kt, KeyECDSAP256, KeyEd25519, KeyRSA3072)
}

// Encrypted key files.
//
// A key encrypted with a passphrase is a PEM block of type
// EncryptedKeyPEMType whose headers give the parameters and whose bytes
// are the AES-256-GCM sealing of the PKCS#8 DER of the key:
//
//	-----BEGIN WARDEN ENCRYPTED PRIVATE KEY-----
//	Version: 1
//	KDF: scrypt
//	Scrypt-N: 32768
//	Scrypt-R: 8
//	Scrypt-P: 1
//	Salt: <32 hex digits: 16 random bytes>
//	Cipher: AES-256-GCM
//	Nonce: <24 hex digits: 12 random bytes>
//
//	<base64 of ciphertext and 16-byte tag>
//	-----END WARDEN ENCRYPTED PRIVATE KEY-----
//
// The AES key is scrypt(passphrase, salt, N, r, p, 32). The additional
// authenticated data is the block type and every header above, one
// "Name: value\n" line each in that order, so that no parameter can be
// changed without the decryption failing. Unlike the legacy encrypted PEM
// of RFC 1423 (x509.EncryptPEMBlock, deprecated), the encryption is
// authenticated and the key derivation is memory-hard.
const EncryptedKeyPEMType = "WARDEN ENCRYPTED PRIVATE KEY"

// scrypt parameters of new keys (the 2017 interactive recommendation
// doubled), and the bounds accepted when reading one.
const (
	scryptN    = 1 << 15
	scryptR    = 8
	scryptP    = 1
	maxScryptN = 1 << 20
	maxScryptP = 16
)

// ErrWrongPassphrase is returned when an encrypted key does not decrypt:
// the passphrase is wrong, or the file was altered.
var ErrWrongPassphrase = errors.New("wrong passphrase, or the key file was altered")

// ErrKeyEncrypted is returned when a key is encrypted and no passphrase
// was given.
var ErrKeyEncrypted = errors.New("key is encrypted: a passphrase is needed")

var encHeaderOrder = []string{"Version", "KDF", "Scrypt-N", "Scrypt-R", "Scrypt-P", "Salt", "Cipher", "Nonce"}

func encAAD(h map[string]string) []byte {
	aad := []byte(EncryptedKeyPEMType + "\n")
	for _, k := range encHeaderOrder {
		aad = append(aad, k+": "+h[k]+"\n"...)
	}
	return aad
}

// encodeKey returns k as PKCS#8 PEM, encrypted if passphrase is not empty.
func encodeKey(k crypto.Signer, passphrase []byte) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	if len(passphrase) == 0 {
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}
	salt, nonce := make([]byte, 16), make([]byte, 12)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	h := map[string]string{
		"Version": "1", "KDF": "scrypt", "Scrypt-N": strconv.Itoa(scryptN), "Scrypt-R": strconv.Itoa(scryptR),
		"Scrypt-P": strconv.Itoa(scryptP), "Salt": hex.EncodeToString(salt), "Cipher": "AES-256-GCM", "Nonce": hex.EncodeToString(nonce),
	}
	aead, err := keyAEAD(passphrase, salt, scryptN, scryptR, scryptP)
	if err != nil {
		return nil, err
	}
	sealed := aead.Seal(nil, nonce, der, encAAD(h))
	return pem.EncodeToMemory(&pem.Block{Type: EncryptedKeyPEMType, Headers: h, Bytes: sealed}), nil
}

func keyAEAD(passphrase, salt []byte, n, r, p int) (cipher.AEAD, error) {
	key, err := scrypt.Key(passphrase, salt, n, r, p, 32)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// decodeKey parses a PEM private key written by encodeKey (or any
// unencrypted PKCS#8 "PRIVATE KEY").
func decodeKey(data, passphrase []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	der := b.Bytes
	switch b.Type {
	case "PRIVATE KEY":
	case EncryptedKeyPEMType:
		if len(passphrase) == 0 {
			return nil, ErrKeyEncrypted
		}
		h := b.Headers
		if h["Version"] != "1" || h["KDF"] != "scrypt" || h["Cipher"] != "AES-256-GCM" {
			return nil, fmt.Errorf("unsupported encryption (version %q, KDF %q, cipher %q)", h["Version"], h["KDF"], h["Cipher"])
		}
		n, errN := strconv.Atoi(h["Scrypt-N"])
		r, errR := strconv.Atoi(h["Scrypt-R"])
		p, errP := strconv.Atoi(h["Scrypt-P"])
		salt, errS := hex.DecodeString(h["Salt"])
		nonce, errNo := hex.DecodeString(h["Nonce"])
		if err := errors.Join(errN, errR, errP, errS, errNo); err != nil {
			return nil, fmt.Errorf("malformed encryption headers: %w", err)
		}
		// Bounds, so that a crafted file cannot make us allocate
		// gigabytes or spin for minutes.
		if n < 2 || n > maxScryptN || n&(n-1) != 0 || r < 1 || r > 32 || p < 1 || p > maxScryptP || len(salt) < 16 || len(nonce) != 12 {
			return nil, errors.New("encryption parameters out of bounds")
		}
		aead, err := keyAEAD(passphrase, salt, n, r, p)
		if err != nil {
			return nil, err
		}
		if der, err = aead.Open(nil, nonce, b.Bytes, encAAD(h)); err != nil {
			return nil, ErrWrongPassphrase
		}
	default:
		return nil, fmt.Errorf("PEM block %q: want PRIVATE KEY or %s", b.Type, EncryptedKeyPEMType)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#8 key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", k)
	}
	return s, nil
}

// writeFileExcl writes data to path with mode, through a temporary file
// that is synced and then hard-linked into place: a reader (or a crash)
// never sees half a file, and an existing file is never replaced
// (os.Link fails if path exists).
func writeFileExcl(path string, mode os.FileMode, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(mode)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil { // make the new name durable
		_ = d.Sync()
		d.Close()
	}
	return nil
}
