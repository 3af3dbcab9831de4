package apikey

// Defaults live here, in one place.
const (
	// DefaultHeader is the request header read for the key when
	// Config.Header is empty.
	DefaultHeader = "X-API-Key"
	// maxAuditText bounds attacker-chosen text copied into audit events.
	maxAuditText = 256
)
