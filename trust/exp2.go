package trust

import "math"

// exp2 returns 2**x with a result that is the same, bit for bit, on every
// architecture Go supports. math.Exp2 is not: arm64 and loong64 use
// assembly, and compilers may fuse a*b+c into one FMA instruction on some
// platforms, both of which change the last bits. Scores are persisted and
// recomputed, possibly on nodes of different architectures, and must
// agree exactly; so every product below is rounded explicitly
// (float64(a*b) forbids fusion, see the Go spec on floating-point
// operators), and the table holds decimal literals that the compiler
// rounds the same way everywhere.
//
// Method: x = n + j/16 + r with n an integer, 0 ≤ j < 16 and
// 0 ≤ r < 1/16; 2**x = 2**n · 2**(j/16) · e**(r·ln 2), the last by its
// Taylor series to the 8th power (the first omitted term is below
// 2e-18). The relative error is a few units in the last place, which
// exp2_test.go checks against math.Exp2.
func exp2(x float64) float64 {
	switch {
	case x != x: // NaN
		return x
	case x > 1024:
		return math.Inf(1)
	case x < -1080:
		return 0
	}
	n := math.Floor(x)
	f := x - n // in [0, 1]; exact, except that a tiny negative x rounds it up to 1
	if f >= 1 {
		n, f = n+1, 0
	}
	j := int(f * 16)           // f*16 is exact: a power-of-two scaling
	r := f - float64(j)/16     // exact (Sterbenz), in [0, 1/16)
	y := float64(r * math.Ln2) // in [0, 0.0434)
	p := 1.0 / 40320
	p = float64(y*p) + 1.0/5040
	p = float64(y*p) + 1.0/720
	p = float64(y*p) + 1.0/120
	p = float64(y*p) + 1.0/24
	p = float64(y*p) + 1.0/6
	p = float64(y*p) + 1.0/2
	p = float64(y*p) + 1
	p = float64(y*p) + 1
	return math.Ldexp(float64(exp2Table[j]*p), int(n))
}

// exp2Table[j] is 2**(j/16), to 40 digits.
var exp2Table = [16]float64{
	1.0000000000000000000000000000000000000000,
	1.0442737824274138403219664787399290087846,
	1.0905077326652576592070106557607079789927,
	1.1387886347566916537038302838415112547202,
	1.1892071150027210667174999705604759152930,
	1.2418578120734840485936774687265956055110,
	1.2968395546510096659337541177924511598353,
	1.3542555469368927282980147401407028043433,
	1.4142135623730950488016887242096980785697,
	1.4768261459394993113869074803740499239236,
	1.5422108254079408236122918620907348413068,
	1.6104903319492543081795206673574005834594,
	1.6817928305074290860622509524664297900801,
	1.7562521603732994831121606193753132212943,
	1.8340080864093424634870831895882888560773,
	1.9152065613971472938726112702958308878503,
}
