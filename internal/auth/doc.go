// Package auth groups the gateway's authentication methods, one subpackage
// per method: mtls, jwt (with introspection), dpop, apikey (policy type
// api_key), stepup, and lockout (brute-force protection); httpsig is to
// come.
//
// Each subpackage registers a policy type with internal/policy from an init
// function, so that importing it (usually blank, from the gateway and from
// config validation) makes the type available to configs. A method reads
// and extends the request's policy.Identity; it never reaches into another
// method. This package itself holds no code.
package auth
