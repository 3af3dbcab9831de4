package revocation_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/wardengw/warden/internal/revocation"
)

// A gateway builds one Checker from its trust bundles, starts its
// background refresh, and applies its hard- or soft-fail policy to the
// typed errors.
func Example() {
	var bundle []*x509.Certificate // the trust bundles' roots and intermediates
	c, err := revocation.New(revocation.Config{}, bundle)
	if err != nil {
		panic(err)
	}
	c.Start(context.Background())
	defer c.Close()

	var verified []*x509.Certificate // tls.ConnectionState().VerifiedChains[0]
	hardFail := true
	err = c.CheckChain(context.Background(), verified)
	var rev *revocation.RevokedError
	switch {
	case err == nil:
		fmt.Println("admit")
	case errors.As(err, &rev):
		fmt.Println("deny:", revocation.Reason(err), rev.ReasonText)
	case hardFail:
		fmt.Println("deny:", revocation.Reason(err))
	default:
		fmt.Println("admit, soft fail:", revocation.Reason(err))
	}
	// Output: admit
}
