// Package transfer holds an in-process benchmark of shoal's engine: one
// session.Client seeding to another over 127.0.0.1, both in this process, so
// that `go test -cpuprofile/-memprofile` shows where a fast transfer spends
// its time (see transfer_test.go). It has no non-test code.
//
//	go test -run '^$' -bench Transfer -benchtime 2x ./bench/transfer/
//	BENCH_CPUPROFILE=/tmp/cpu.out go test -run '^$' -bench Transfer -benchtime 2x \
//	    -memprofile /tmp/mem.out -o /tmp/transfer.test ./bench/transfer/
//	go tool pprof -top /tmp/transfer.test /tmp/cpu.out
//
// BENCH_MIB sets the content size (default 256). BENCH_CPUPROFILE writes a
// CPU profile of the timed transfers only (-cpuprofile would also profile
// the set-up: making the data and hashing it for the .torrent).
package transfer
