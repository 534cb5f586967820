//go:build race

package s3_test

// raceEnabled: the race detector keeps shadow memory for every heap byte,
// which shows in the process's RSS but is no part of otad's.
const raceEnabled = true
