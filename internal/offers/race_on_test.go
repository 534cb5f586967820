//go:build race

package offers_test

// raceOn: the race detector makes a million records take a minute.
const raceOn = true
