// Package crashtest holds otad's reliability tests; it has no code outside
// its tests.
//
// TestCrashConsistency builds cmd/otad, runs a seeded random workload of
// uploads, rollbacks, promotes and deletes against the real process, kills
// it with SIGKILL at random moments (often mid-request) and, after every
// restart, checks that nothing acknowledged was lost and nothing
// unacknowledged was half done. TestConcurrentWrites runs many writers
// against one in-process server and checks that the history and the
// channel pointers agree with every acknowledged answer.
//
// The invariants, how to run the long mode and the measured results are in
// docs/reliability.md.
package crashtest
