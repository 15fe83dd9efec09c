package rtmsim

import (
	"bytes"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// Named curves a server key file may use (RFC 5480, SEC 2).
var (
	oidP256      = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidSecp256k1 = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
	oidP224      = asn1.ObjectIdentifier{1, 3, 132, 0, 33}
	oidECKey     = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
)

// sec1Key is an "EC PRIVATE KEY" (RFC 5915).
type sec1Key struct {
	Version    int
	PrivateKey []byte
	Curve      asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	PublicKey  asn1.BitString        `asn1:"optional,explicit,tag:1"`
}

// pkcs8Key is a "PRIVATE KEY" (RFC 5208) holding an EC key.
type pkcs8Key struct {
	Version    int
	Algo       pkcs8Algo
	PrivateKey []byte
}

type pkcs8Algo struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

// ParseServerKeyPEM reads a gateway's private key from PEM as OpenSSL writes
// it: `openssl ecparam -name prime256v1 -genkey` (an "EC PARAMETERS" block,
// skipped, then "EC PRIVATE KEY", SEC 1) or `openssl genpkey -algorithm EC
// -pkeyopt ec_paramgen_curve:P-256` ("PRIVATE KEY", PKCS #8). Curves:
// secp256r1 (prime256v1), secp256k1 and secp224r1, named (not explicit
// parameters). When the file also holds the public key, it must match.
// Errors never quote key material.
func ParseServerKeyPEM(data []byte) (*rtm.ServerPrivateKey, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("rtmsim: server key: no \"EC PRIVATE KEY\" or \"PRIVATE KEY\" PEM block")
		}
		switch block.Type {
		case "EC PARAMETERS":
			continue
		case "EC PRIVATE KEY":
			return parseSEC1(block.Bytes, nil)
		case "PRIVATE KEY":
			var k pkcs8Key
			if _, err := asn1.Unmarshal(block.Bytes, &k); err != nil {
				return nil, fmt.Errorf("rtmsim: server key: PKCS #8: %w", err)
			}
			if !k.Algo.Algorithm.Equal(oidECKey) {
				return nil, fmt.Errorf("rtmsim: server key: PKCS #8 algorithm %v is not an EC key", k.Algo.Algorithm)
			}
			var curve asn1.ObjectIdentifier
			if _, err := asn1.Unmarshal(k.Algo.Parameters.FullBytes, &curve); err != nil {
				return nil, errors.New("rtmsim: server key: PKCS #8: the curve is not a named curve")
			}
			return parseSEC1(k.PrivateKey, curve)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("rtmsim: server key: the key is encrypted; write it without a passphrase (openssl ... -nodes / no -aes256)")
		default:
			return nil, fmt.Errorf("rtmsim: server key: PEM block %q, want \"EC PRIVATE KEY\" or \"PRIVATE KEY\"", block.Type)
		}
	}
}

// parseSEC1 reads a SEC 1 ECPrivateKey; curve, from PKCS #8, is used when
// the structure names none.
func parseSEC1(der []byte, curve asn1.ObjectIdentifier) (*rtm.ServerPrivateKey, error) {
	var k sec1Key
	if _, err := asn1.Unmarshal(der, &k); err != nil {
		return nil, fmt.Errorf("rtmsim: server key: EC private key: %w", err)
	}
	if k.Version != 1 {
		return nil, fmt.Errorf("rtmsim: server key: EC private key version %d, want 1", k.Version)
	}
	if len(k.Curve) > 0 {
		curve = k.Curve
	}
	var name string
	var size int
	switch {
	case curve.Equal(oidP256):
		name, size = "secp256r1", 32
	case curve.Equal(oidSecp256k1):
		name, size = "secp256k1", 32
	case curve.Equal(oidP224):
		name, size = "secp224r1", 28
	case len(curve) == 0:
		return nil, errors.New("rtmsim: server key: no named curve in the key")
	default:
		return nil, fmt.Errorf("rtmsim: server key: curve %v not supported (secp256r1, secp256k1, secp224r1)", curve)
	}
	scalar := k.PrivateKey
	if len(scalar) > size {
		return nil, fmt.Errorf("rtmsim: server key: private key is %d bytes, want %d for %s", len(scalar), size, name)
	}
	if len(scalar) < size { // leading zeros may have been dropped
		scalar = append(make([]byte, size-len(scalar)), scalar...)
	}
	key, err := rtm.ParseServerPrivateKey(name, scalar)
	clear(scalar)
	if err != nil {
		return nil, fmt.Errorf("rtmsim: server key: %w", err)
	}
	if pub := k.PublicKey.Bytes; len(pub) > 0 {
		block, _ := pem.Decode(key.PublicPEM())
		var spki struct {
			Algo      pkcs8Algo
			PublicKey asn1.BitString
		}
		if block == nil {
			return nil, errors.New("rtmsim: server key: public key PEM")
		}
		if _, err := asn1.Unmarshal(block.Bytes, &spki); err != nil {
			return nil, fmt.Errorf("rtmsim: server key: public key: %w", err)
		}
		if !bytes.Equal(pub, spki.PublicKey.Bytes) {
			return nil, fmt.Errorf("rtmsim: server key: the public key in the file does not belong to its %s private key", name)
		}
	}
	return key, nil
}
