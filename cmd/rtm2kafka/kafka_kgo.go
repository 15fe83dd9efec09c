package main

import "strings"

// principal names who the broker sees, as far as the client can tell:
// the SASL user, the client certificate's subject, or ANONYMOUS.
func (k *KafkaConfig) principal() string {
	switch {
	case k.SASLMechanism != "":
		return "User:" + k.SASLUsername + " (" + strings.ToUpper(k.SASLMechanism) + ")"
	case k.TLSCertFile != "":
		return "the principal of client certificate " + k.TLSCertFile
	}
	return "User:ANONYMOUS"
}
