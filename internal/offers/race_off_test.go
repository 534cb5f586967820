//go:build !race

package offers_test

const raceOn = false
