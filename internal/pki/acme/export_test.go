package acme

import "time"

// WithRenewCheckInterval returns c with maintenance looking for
// certificates to renew every d, for tests.
func WithRenewCheckInterval(c Config, d time.Duration) Config {
	c.renewCheckInterval = d
	return c
}
