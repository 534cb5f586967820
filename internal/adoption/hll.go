package adoption

import (
	"math"
	"math/bits"
)

// sketchBits is the HyperLogLog precision: 2^12 one-byte registers, 4 KiB
// a sketch, a standard error of 1.04/√4096 ≈ 1.6 %.
const (
	sketchBits = 12
	sketchSize = 1 << sketchBits
)

// SketchBytes is the memory one sketch takes.
const SketchBytes = sketchSize

// sketch is a HyperLogLog counter of distinct 64-bit keys (Flajolet et al.
// 2007, with the small-range correction of linear counting). Keys must be
// well mixed already: the offer memory's device keys are (FNV-1a, then
// splitmix64's finaliser).
type sketch [sketchSize]uint8

// add counts key.
func (s *sketch) add(key uint64) {
	i := key >> (64 - sketchBits)
	// The rank of the rest: leading zeros + 1, the guard bit bounding it.
	w := key<<sketchBits | 1<<(sketchBits-1)
	r := uint8(bits.LeadingZeros64(w) + 1)
	if s[i] < r {
		s[i] = r
	}
}

// estimate is the number of distinct keys added, within about 1.6 %.
func (s *sketch) estimate() int {
	const m = float64(sketchSize)
	alpha := 0.7213 / (1 + 1.079/m)
	sum, zeros := 0.0, 0
	for _, r := range s {
		sum += 1 / float64(uint64(1)<<r)
		if r == 0 {
			zeros++
		}
	}
	e := alpha * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros)) // linear counting
	}
	return int(e + 0.5)
}
