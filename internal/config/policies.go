package config

// The policy types a config may name. Validation builds every policy
// block, so every type Warden has is registered here.
import (
	_ "github.com/wardengw/warden/internal/auth/apikey"
	_ "github.com/wardengw/warden/internal/auth/dpop"
	_ "github.com/wardengw/warden/internal/auth/jwt"
	_ "github.com/wardengw/warden/internal/auth/lockout"
	_ "github.com/wardengw/warden/internal/auth/mtls"
	_ "github.com/wardengw/warden/internal/auth/stepup"
)
