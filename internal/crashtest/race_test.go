//go:build race

package crashtest

// raceEnabled is true when the test runs under -race; the binary under test
// is then built with -race too, so the server's own races are caught.
const raceEnabled = true
