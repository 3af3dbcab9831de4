// These directives turn on, for the whole test binary, the legacy crypto/tls
// behaviours Go disables by default: static RSA key exchange, 3DES, and TLS
// 1.0/1.1 on servers that leave MinVersion unset. The tests then prove the
// Server refuses them anyway, because it sets every field explicitly, and
// TestGODEBUGControl proves the directives are in effect.

//go:debug tlsrsakex=1
//go:debug tls3des=1
//go:debug tls10server=1

package tlsserver_test
