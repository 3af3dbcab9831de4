// Package expiry watches every certificate the gateway uses or trusts and
// says so before one expires.
//
// A [Watcher] is handed the certificates in use (the gateway's server
// chains, client and admin trust bundles, upstream CAs and client
// certificates: the same list that feeds the warden_certificate_expiry_seconds
// gauge of package telemetry) and, at each [Watcher.Check], compares their
// NotAfter with the configured thresholds (30, 14, 7 and 1 days by
// default). The first time a certificate is found within a threshold it
// emits one audit event ("certificate_expiring", warning above 7 days,
// critical at 7 days and under; "certificate_expired", critical) and posts
// one JSON [Notification] to the optional webhook. When a check finds a
// certificate past several thresholds at once (a gateway started with a
// certificate 5 days from expiry) only the tightest one is reported and the
// looser ones count as done: one alert, not three.
//
// What was notified is remembered in memory, keyed by certificate (serial
// and NotAfter) and threshold, so repeated checks never repeat a
// notification; after a restart the tightest threshold already crossed is
// notified once more. A webhook delivery is retried with exponential
// backoff (bounded attempts); if every attempt fails the notification stays
// pending and is tried again at the next check, until it is delivered or
// its certificate leaves the set. Each notification carries a stable ID,
// also sent as the Idempotency-Key header, so a receiver can drop the
// duplicate a lost acknowledgement may cause.
//
// [CheckPins] flags a pin set that would match no certificate of a planned
// (post-rotation) chain, or that has no backup pin, before the rotation
// cuts the upstream off.
//
// [Inventory] lists every certificate a config makes the gateway use or
// trust, with its state; `warden certs` prints it.
package expiry
