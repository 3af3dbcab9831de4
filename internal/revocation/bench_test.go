package revocation

import (
	"context"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/wardengw/warden/internal/policy"
	"github.com/wardengw/warden/internal/revocation/revocationtest"
)

type noopChecker struct{}

func (noopChecker) CheckChain(context.Context, []*x509.Certificate) error { return nil }

// BenchmarkCheckChain measures the request-path cost of CheckChain once
// answers are cached, against a checker that does nothing, in one run.
// CRL variants use a CRL of 10,000 entries.
func BenchmarkCheckChain(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	revoked := map[*big.Int]revocationtest.Revocation{}
	for i := range 10000 {
		revoked[big.NewInt(int64(1_000_000+i))] = revocationtest.Revocation{At: f.clock.Now(), Reason: superseded}
	}
	crl := f.crl(revoked)
	f.dp.Publish(crl)
	file := writeFile(b, "big.crl", crl)

	run := func(name string, c policy.RevocationChecker, chain []*x509.Certificate) {
		if err := c.CheckChain(ctx, chain); err != nil { // prime the caches
			b.Fatalf("%s: %v", name, err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.CheckChain(ctx, chain); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.CheckChain(ctx, chain); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	long := Config{CRLRefresh: time.Hour}
	run("noop", noopChecker{}, f.leafOCSP().Chain)
	run("ocsp_cached", f.checker(long), f.leafOCSP().Chain)
	run("crl_file", f.checker(Config{CRLFiles: []string{file}, DisableOCSP: true}), f.leafNone().Chain)
	run("crl_distribution_point", f.checker(long), f.leafDP().Chain)
	run("crl_and_ocsp_cached", f.checker(long), f.leafBoth().Chain)
}
