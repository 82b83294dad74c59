package plugin

import "encoding/json"

// testPublicKeyPEM is an ECDSA P-256 public key, whose private key was
// thrown away: a sidecar's verification keys must be ECDSA P-256 public
// keys (bundle/enforce), so a configuration's keys: needs a real one.
const testPublicKeyPEM = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEuyymB7pXPMQMfQG2H9rX7jNTdpsX
u+CsoMa28SjuR0h1Wk/T3MdoVpekLNrUy5ve0tjKtQK15+0Lct/eCyfpYg==
-----END PUBLIC KEY-----
`

// testKeyJSON is testPublicKeyPEM as a JSON string.
var testKeyJSON = func() string {
	b, _ := json.Marshal(testPublicKeyPEM)
	return string(b)
}()
