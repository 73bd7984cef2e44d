//go:build !linux

package peer

func setNotSentLowat(fd uintptr, n int) {}
