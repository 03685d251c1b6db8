package trust

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"
)

func TestExp2MatchesMath(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(x float64) {
		t.Helper()
		got, want := exp2(x), math.Exp2(x)
		if want == 0 || math.IsInf(want, 0) {
			if got != want {
				t.Fatalf("exp2(%v) = %v, want %v", x, got, want)
			}
			return
		}
		if rel := math.Abs(got-want) / want; rel > 4e-16 {
			t.Fatalf("exp2(%v) = %v, want %v (relative error %g)", x, got, want, rel)
		}
	}
	for _, x := range []float64{0, 1, -1, 0.5, -0.5, 1.0 / 16, 15.0 / 16, 31.999, -31.999, 1023, -1022, 1023.99} {
		check(x)
	}
	for range 200_000 {
		check(r.Float64()*80 - 40)
		check(r.Float64()*2 - 1)
		check(r.Float64()*2040 - 1020) // normal results; subnormals are of no use here
	}
	if exp2(2000) != math.Inf(1) || exp2(-2000) != 0 || !math.IsNaN(exp2(math.NaN())) {
		t.Fatal("exp2 out of range")
	}
	for i := -20; i <= 20; i++ {
		if got := exp2(float64(i)); got != math.Ldexp(1, i) {
			t.Fatalf("exp2(%d) = %v, want exactly 2^%d", i, got, i)
		}
	}
}

// TestExp2Golden pins exp2's bits. Run on any architecture (and with
// GOAMD64=v3, where the compiler may use FMA), these must hold: persisted
// scores depend on them.
func TestExp2Golden(t *testing.T) {
	for _, c := range []struct {
		x    float64
		bits uint64
	}{
		{-0.5, exp2GoldenBits[0]},
		{-1.0 / 3, exp2GoldenBits[1]},
		{0.7071, exp2GoldenBits[2]},
		{-12.345678, exp2GoldenBits[3]},
		{31.9999, exp2GoldenBits[4]},
		{-3.1415926535, exp2GoldenBits[5]},
	} {
		if got := math.Float64bits(exp2(c.x)); got != c.bits {
			t.Errorf("exp2(%v) bits = %#x, want %#x", c.x, got, c.bits)
		}
	}
}

var exp2GoldenBits = [6]uint64{
	0x3fe6a09e667f3bcd, 0x3fe965fea53d6e3c, 0x3ffa1ecc8039fa8e,
	0x3f292e98bcb6cde4, 0x41efff6ea43bd8ed, 0x3fbd0231bd665e24,
}

// TestExp2Digest pins exp2's bits over many inputs at once: a single
// last-bit difference on some platform changes the digest. The inputs
// are those decay and the Gain shape use: −64 to 32.
func TestExp2Digest(t *testing.T) {
	h := fnv.New64a()
	var buf [8]byte
	for i := range 200_000 {
		// float64(…) keeps the compiler from fusing the inputs themselves.
		x := -64 + float64(float64(i)*(96.0/200_000)) + float64(float64(i%7)*1e-9)
		binary.LittleEndian.PutUint64(buf[:], math.Float64bits(exp2(x)))
		h.Write(buf[:])
	}
	if got := h.Sum64(); got != exp2Digest {
		t.Fatalf("digest %#x, want %#x", got, uint64(exp2Digest))
	}
}

const exp2Digest = 0x4f0b7377e462c949

func TestExp2TinyNegative(t *testing.T) {
	// x − floor(x) rounds up to 1 here; found by FuzzStateJSON.
	for _, x := range []float64{-1e-17, -5e-324, -1e-300, math.Copysign(0, -1)} {
		if got := exp2(x); got != 1 {
			t.Errorf("exp2(%v) = %v, want 1", x, got)
		}
	}
}
